/**
 * systemd-resolved for the data-plane test, WITHOUT installing it: installing the Debian package
 * replaces the host's /etc/resolv.conf (its postinst), which would break the machine's DNS. The
 * package (and libsystemd-shared of the same version, which it links against; the installed
 * libsystemd-shared, from scripts/test-all.sh, brings the libraries that one needs) is fetched with `apt-get download` into a cache directory and unpacked with dpkg-deb;
 * the test runs the unpacked binary inside the runner's own mount and network namespace.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface Resolved {
  binary: string;
  resolvectl: string;
  libDir: string;
  version: string;
}

const CACHE = path.join(os.tmpdir(), "gen-lab-e2e-debs");

function run(cmd: string, args: string[], cwd?: string) {
  return spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 120_000 });
}

function candidate(pkg: string): string | undefined {
  const r = run("apt-cache", ["policy", pkg]);
  return /Candidate:\s*(\S+)/.exec(r.stdout ?? "")?.[1];
}

function download(pkg: string, version: string): string {
  const safe = version.replace(/:/g, "%3a");
  const existing = fs
    .readdirSync(CACHE)
    .find((f) => f.startsWith(`${pkg}_${safe}_`) && f.endsWith(".deb"));
  if (existing) return path.join(CACHE, existing);
  let r = run("apt-get", ["download", `${pkg}=${version}`], CACHE);
  if (r.status !== 0) {
    run("apt-get", ["update", "-qq"]);
    r = run("apt-get", ["download", `${pkg}=${version}`], CACHE);
  }
  const got = fs
    .readdirSync(CACHE)
    .find((f) => f.startsWith(`${pkg}_${safe}_`) && f.endsWith(".deb"));
  if (r.status !== 0 || !got)
    throw new Error(
      `apt-get download ${pkg}=${version} failed:\n${r.stdout}${r.stderr}`,
    );
  return path.join(CACHE, got);
}

/** Download (once, cached) and unpack systemd-resolved; never installs anything. */
export function fetchResolved(): Resolved {
  fs.mkdirSync(CACHE, { recursive: true });
  let version = candidate("systemd-resolved");
  if (!version || version === "(none)") {
    run("apt-get", ["update", "-qq"]);
    version = candidate("systemd-resolved");
  }
  if (!version || version === "(none)")
    throw new Error(
      "apt-cache knows no systemd-resolved package (is this Debian 12?)",
    );
  const dir = path.join(
    CACHE,
    `unpacked-${version.replace(/[^A-Za-z0-9.+~-]/g, "_")}`,
  );
  const binary = path.join(dir, "lib/systemd/systemd-resolved");
  if (!fs.existsSync(binary)) {
    // Unpack beside, then rename: a parallel run sees either nothing or the whole tree.
    const part = fs.mkdtempSync(`${dir}.part-`);
    // systemd-resolved needs libsystemd-shared of exactly its own version.
    for (const pkg of ["systemd-resolved", "libsystemd-shared"]) {
      const deb = download(pkg, version);
      const r = run("dpkg-deb", ["-x", deb, part]);
      if (r.status !== 0)
        throw new Error(`dpkg-deb -x ${deb} failed: ${r.stderr}`);
    }
    try {
      fs.renameSync(part, dir);
    } catch {
      fs.rmSync(part, { recursive: true, force: true }); // another run was first
    }
  }
  const libDir = [
    path.join(dir, "usr/lib/x86_64-linux-gnu/systemd"),
    path.join(dir, "lib/x86_64-linux-gnu/systemd"),
    ...fs
      .readdirSync(path.join(dir, "usr/lib"))
      .map((d) => path.join(dir, "usr/lib", d, "systemd")),
  ].find(
    (d) =>
      fs.existsSync(d) &&
      fs.readdirSync(d).some((f) => f.startsWith("libsystemd-shared")),
  );
  if (!libDir)
    throw new Error(
      `no libsystemd-shared in the unpacked libsystemd-shared ${version}`,
    );
  return {
    binary,
    resolvectl: path.join(dir, "usr/bin/resolvectl"),
    libDir,
    version,
  };
}
