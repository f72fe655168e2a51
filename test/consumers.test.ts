/**
 * The generated files, read by the programs that will consume them on a runner or worker:
 * NetworkManager's own keyfile parser (nmcli --offline), bash and shellcheck, cloud-init,
 * systemd-analyze.
 * Covers every golden tree and the committed out/.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { GOLDEN, ROOT, have, skipped } from "./helpers.js";
import { cloudInitProblems, nmcliProblems } from "./support/consumers.js";

function filesUnder(dir: string, match: (p: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (match(full)) out.push(full);
    }
  };
  walk(dir);
  return out.sort();
}

const trees = [GOLDEN, path.join(ROOT, "out")];
const keyfiles = trees.flatMap((t) =>
  filesUnder(t, (p) => p.endsWith(".nmconnection")),
);
const dispatchers = trees.flatMap((t) =>
  filesUnder(
    t,
    (p) => p.includes("/dispatcher.d/") || p.includes("/usr/local/sbin/"),
  ),
);
const userData = trees.flatMap((t) =>
  filesUnder(t, (p) => p.endsWith("user-data.yaml")),
);
const units = trees.flatMap((t) =>
  filesUnder(t, (p) => /\/etc\/systemd\/system\/[^/]+\.service$/.test(p)),
);
const rel = (p: string) => path.relative(ROOT, p);

test("every kind of file the consumers check is there", () => {
  assert.ok(
    dispatchers.length >= 16 && userData.length >= 18 && units.length >= 9,
  );
});

test("the consumer programs are installed (scripts/test-all.sh installs them)", () => {
  for (const p of ["nmcli", "shellcheck", "cloud-init", "bash"])
    assert.ok(have(p), `${p} is on PATH`);
  assert.ok(
    keyfiles.length >= 4 && dispatchers.length >= 2 && userData.length >= 2,
    "there are generated files to check",
  );
});

for (const file of keyfiles) {
  test(`nmcli --offline reads ${rel(file)} and keeps every key and value`, () => {
    assert.equal(nmcliProblems(fs.readFileSync(file, "utf8")), []);
  });
}

for (const file of dispatchers) {
  test(`bash -n and shellcheck accept ${rel(file)}`, () => {
    const syntax = spawnSync("bash", ["-n", file], { encoding: "utf8" });
    assert.is(syntax.status, 0, syntax.stderr);
    const lint = spawnSync(
      "shellcheck",
      ["--shell=bash", "--severity=style", file],
      { encoding: "utf8" },
    );
    assert.is(lint.status, 0, lint.stdout + lint.stderr);
    assert.is(fs.statSync(file).mode & 0o111, 0o111, "executable");
  });
}

for (const file of userData) {
  test(`cloud-init schema accepts ${rel(file)}`, () => {
    assert.equal(cloudInitProblems(fs.readFileSync(file, "utf8")), []);
  });
}

for (const file of units) {
  test(`systemd-analyze verify accepts ${rel(file)}`, () => {
    if (process.getuid?.() !== 0)
      return skipped(
        "needs root to lay the rootfs over / in a mount namespace",
      );
    // Where the rootfs puts it, with the script its ExecStart names: the rootfs laid over
    // /etc and /usr/local, read-only, in a mount namespace of the test's own.
    const root = file.slice(0, file.indexOf("/rootfs/") + "/rootfs".length);
    const r = spawnSync(
      "unshare",
      [
        "-m",
        "sh",
        "-c",
        `mount --make-rprivate / && mount -t overlay overlay -o lowerdir="$0/etc:/etc" /etc && mount -t overlay overlay -o lowerdir="$0/usr/local:/usr/local" /usr/local && systemd-analyze verify "$1"`,
        root,
        file.slice(root.length),
      ],
      { encoding: "utf8" },
    );
    assert.is(r.status, 0, `${r.stdout}${r.stderr}`);
  });
}

test.run();
