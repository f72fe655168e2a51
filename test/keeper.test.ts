/**
 * The tunnel keeper's answer to OpenVPN 2.7 (issue 21): a static-key tunnel on a runner whose
 * OpenVPN refuses static keys is not started, and the keeper says why, naming the version and
 * the way out. The generated keeper runs in a mount namespace of its own (a private /run for its
 * state and the key); `openvpn --version`, `nmcli` and `systemctl` are stand-ins that record
 * their calls. The rest of the keeper runs for real in test/e2e/resilience.test.ts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generate, parseLab } from "../src/index.js";
import { ROOT, skipped, tempDir } from "./helpers.js";

const LAB = path.join(ROOT, "test/e2e/lab.yaml"); // static key at /run/gen-lab-e2e/e2e-1.key

function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root for a mount namespace";
  if (spawnSync("unshare", ["-m", "true"]).status !== 0)
    return "cannot make a mount namespace";
  return undefined;
}

/** One look of the keeper (it looks again after 10 s: `timeout` ends it before). */
function keeperOnce(openvpnVersion: string) {
  const lab = parseLab(fs.readFileSync(LAB, "utf8"), "lab.yaml");
  const keeper = generate(lab).find((f) =>
    f.path.endsWith("/usr/local/sbin/gen-lab-e2e-tunnel"),
  )!;
  const { dir, cleanup } = tempDir();
  try {
    const stubs = path.join(dir, "stubs");
    fs.mkdirSync(stubs);
    const log = path.join(dir, "calls.log");
    const stub = (name: string, body: string) =>
      fs.writeFileSync(
        path.join(stubs, name),
        `#!/bin/sh\necho "${name} $*" >>"${log}"\n${body}\n`,
        { mode: 0o755 },
      );
    stub(
      "openvpn",
      `echo "OpenVPN ${openvpnVersion} x86_64-pc-linux-gnu [SSL (OpenSSL)]"`,
    );
    stub("nmcli", "exit 0");
    stub("systemctl", "exit 0");
    fs.writeFileSync(path.join(dir, "keeper"), keeper.contents, {
      mode: 0o755,
    });
    const r = spawnSync(
      "unshare",
      [
        "-m",
        "bash",
        "-c",
        `set -e
mount --make-rprivate /
mount -t tmpfs gen-lab-test /run
mkdir -p /run/gen-lab-e2e && echo key >/run/gen-lab-e2e/e2e-1.key
timeout 3 "$0/keeper" || true
cat /run/gen-lab/e2e/tunnel`,
        dir,
      ],
      {
        encoding: "utf8",
        env: { PATH: `${stubs}:/usr/sbin:/usr/bin:/sbin:/bin` },
        timeout: 60_000,
      },
    );
    return {
      status: r.status,
      state: r.stdout.trim(),
      journal: r.stderr,
      calls: fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "",
    };
  } finally {
    cleanup();
  }
}

test("OpenVPN 2.7 and a static key: the tunnel is not started, and the keeper says why and what to do", () => {
  const why = cannotRun();
  if (why) return skipped(why);
  const r = keeperOnce("2.7.0");
  assert.is(r.status, 0, r.journal);
  assert.match(
    r.state,
    /^down OpenVPN 2\.7\.0 refuses static-key mode without --allow-deprecated-insecure-static-crypto, which NetworkManager-openvpn cannot pass: move lab e2e to TLS \(vpn\.auth: tls\)/,
  );
  assert.match(r.journal, /gen-lab-e2e-tunnel: OpenVPN 2\.7\.0 refuses/);
  assert.not.match(r.calls, /nmcli .*connection up/, "no tunnel started");
});

test("OpenVPN 2.6 and a static key: the keeper starts the tunnel", () => {
  const why = cannotRun();
  if (why) return skipped(why);
  const r = keeperOnce("2.6.14");
  assert.is(r.status, 0, r.journal);
  assert.match(r.state, /^down the tunnel is down: starting it$/);
  assert.match(r.calls, /^nmcli --wait 90 connection up [0-9a-f-]{36}$/m);
});

test.run();
