/**
 * The command line as users and CI drive it: writing, --check, the manifest's promise
 * (remove only what gen-lab wrote), determinism across environments, --help and --version.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ROOT, readTree, runCli, tempDir } from "./helpers.js";

const FOO = path.join(ROOT, "labs", "foo.yaml");

test("writes every file of artifacts.md with its mode", () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = runCli([FOO, "-o", dir]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /foo: \d+ files: \d+ added/);
    const tree = readTree(dir);
    const expect: [string, number][] = [];
    for (const runner of ["foo-1", "foo-2"]) {
      const root = `foo/runners/${runner}/rootfs/etc`;
      expect.push(
        [
          `${root}/NetworkManager/system-connections/foo-vpn.nmconnection`,
          0o600,
        ],
        [
          `${root}/NetworkManager/system-connections/foo-uplink.nmconnection`,
          0o600,
        ],
        [`${root}/NetworkManager/dispatcher.d/90-gen-lab-foo`, 0o755],
        [`${root}/sysctl.d/90-gen-lab-foo.conf`, 0o644],
        [`${root}/systemd/resolved.conf.d/90-gen-lab-foo.conf`, 0o644],
        [`foo/runners/${runner}/worker-user-data.yaml`, 0o644],
      );
    }
    expect.push(["foo/.gen-lab-manifest.json", 0o644]);
    for (const [p, mode] of expect) {
      assert.ok(tree.has(p), `${p} written`);
      assert.is(
        tree.get(p)!.mode.toString(8),
        mode.toString(8),
        `mode of ${p}`,
      );
    }
    const uplink = tree.get(
      "foo/runners/foo-1/rootfs/etc/NetworkManager/system-connections/foo-uplink.nmconnection",
    )!.contents;
    const vpn = tree.get(
      "foo/runners/foo-1/rootfs/etc/NetworkManager/system-connections/foo-vpn.nmconnection",
    )!.contents;
    const uuid = /^uuid=(.+)$/m.exec(vpn)![1]!;
    assert.match(
      uplink,
      new RegExp(`^secondaries=${uuid};$`, "m"),
      "the uplink names the VPN uuid",
    );
  } finally {
    cleanup();
  }
});

test("--check: 0 when up to date, 1 with a unified diff when not, and it writes nothing", () => {
  const { dir, cleanup } = tempDir();
  try {
    const missing = runCli([FOO, "-o", path.join(dir, "none"), "--check"]);
    assert.is(missing.status, 1);
    assert.not.ok(
      fs.existsSync(path.join(dir, "none")),
      "--check created nothing",
    );
    assert.is(runCli([FOO, "-o", dir]).status, 0);
    const clean = runCli([FOO, "-o", dir, "--check"]);
    assert.is(clean.status, 0, clean.stdout + clean.stderr);
    const sysctl = path.join(
      dir,
      "foo/runners/foo-1/rootfs/etc/sysctl.d/90-gen-lab-foo.conf",
    );
    fs.writeFileSync(sysctl, "net.ipv4.ip_forward = 0\n");
    const before = readTree(dir);
    const stale = runCli([FOO, "-o", dir, "--check"]);
    assert.is(stale.status, 1);
    assert.match(
      stale.stdout,
      /^--- a\/foo\/runners\/foo-1\/rootfs\/etc\/sysctl\.d\/90-gen-lab-foo\.conf/m,
    );
    assert.match(stale.stdout, /^-net\.ipv4\.ip_forward = 0$/m);
    assert.match(stale.stdout, /^\+net\.ipv4\.ip_forward = 1$/m);
    assert.match(stale.stderr, /is stale/);
    assert.equal(readTree(dir), before, "--check wrote nothing");
  } finally {
    cleanup();
  }
});

test("--check compares only the executable bit of modes (what version control keeps)", () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.is(runCli([FOO, "-o", dir]).status, 0);
    const keyfile = path.join(
      dir,
      "foo/runners/foo-1/rootfs/etc/NetworkManager/system-connections/foo-vpn.nmconnection",
    );
    fs.chmodSync(keyfile, 0o644);
    assert.is(
      runCli([FOO, "-o", dir, "--check"]).status,
      0,
      "a checkout without 0600 is not drift",
    );
    const script = path.join(
      dir,
      "foo/runners/foo-1/rootfs/etc/NetworkManager/dispatcher.d/90-gen-lab-foo",
    );
    fs.chmodSync(script, 0o644);
    const r = runCli([FOO, "-o", dir, "--check"]);
    assert.is(r.status, 1);
    assert.match(r.stdout, /mode of foo\/.*90-gen-lab-foo: 0644 -> 0755/);
    assert.is(runCli([FOO, "-o", dir]).status, 0);
    assert.is(
      fs.statSync(keyfile).mode & 0o777,
      0o600,
      "writing restores the exact mode",
    );
  } finally {
    cleanup();
  }
});

test("the manifest: files the lab no longer produces are removed, files gen-lab did not write are kept", () => {
  const { dir, cleanup } = tempDir();
  try {
    const lab = path.join(dir, "foo.yaml");
    fs.writeFileSync(lab, fs.readFileSync(FOO));
    const out = path.join(dir, "out");
    assert.is(runCli([lab, "-o", out]).status, 0);
    fs.writeFileSync(path.join(out, "foo", "NOTES.txt"), "mine\n");
    fs.mkdirSync(path.join(out, "foo", "runners", "foo-2", "extra"), {
      recursive: true,
    });
    fs.writeFileSync(
      path.join(out, "foo", "runners", "foo-2", "extra", "keep.me"),
      "mine too\n",
    );
    fs.writeFileSync(path.join(out, "unrelated.txt"), "not ours\n");
    // Rename runner foo-2 to foo-3: its old files are gen-lab's and must go.
    fs.writeFileSync(
      lab,
      fs.readFileSync(FOO, "utf8").replace("- name: foo-2", "- name: foo-3"),
    );
    const r = runCli([lab, "-o", out]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /removed/);
    const tree = readTree(out);
    assert.ok(tree.has("foo/runners/foo-3/worker-user-data.yaml"));
    assert.not.ok(
      tree.has("foo/runners/foo-2/worker-user-data.yaml"),
      "stale generated file removed",
    );
    assert.is(
      tree.get("foo/NOTES.txt")?.contents,
      "mine\n",
      "foreign file kept",
    );
    assert.is(
      tree.get("foo/runners/foo-2/extra/keep.me")?.contents,
      "mine too\n",
      "foreign file in a stale directory kept",
    );
    assert.is(tree.get("unrelated.txt")?.contents, "not ours\n");
    const leftovers = fs.readdirSync(out).filter((n) => n.startsWith("."));
    assert.equal(leftovers, [], "no staging directories left");
  } finally {
    cleanup();
  }
});

test("an unchanged lab is not rewritten", () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.is(runCli([FOO, "-o", dir]).status, 0);
    const file = path.join(dir, "foo/.gen-lab-manifest.json");
    const before = fs.statSync(file);
    const r = runCli([FOO, "-o", dir]);
    assert.match(r.stdout, /unchanged/);
    assert.is(
      fs.statSync(file).ino,
      before.ino,
      "same inode: the directory was not swapped",
    );
  } finally {
    cleanup();
  }
});

test("same bytes under another TZ, LANG and working directory", () => {
  const a = tempDir();
  const b = tempDir();
  try {
    assert.is(
      runCli([FOO, "-o", a.dir], { env: { TZ: "UTC", LANG: "C", LC_ALL: "C" } })
        .status,
      0,
    );
    const lab = path.relative(b.dir, FOO);
    const r = runCli([lab, "-o", "."], {
      cwd: b.dir,
      env: {
        TZ: "Pacific/Kiritimati",
        LANG: "tr_TR.UTF-8",
        LC_ALL: "tr_TR.UTF-8",
      },
    });
    assert.is(r.status, 0, r.stderr);
    assert.equal(readTree(b.dir), readTree(a.dir));
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test("--help, --version and usage errors", () => {
  const help = runCli(["--help"]);
  assert.is(help.status, 0);
  assert.match(help.stdout, /--check/);
  assert.match(help.stdout, /Exit codes/);
  const version = runCli(["--version"]);
  assert.is(version.status, 0);
  assert.is(
    version.stdout.trim(),
    JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"))
      .version,
  );
  const noOut = runCli([FOO]);
  assert.is(noOut.status, 2);
  assert.match(noOut.stderr, /out/);
  const unknown = runCli([FOO, "-o", "/tmp/x", "--frobnicate"]);
  assert.is(unknown.status, 2);
  assert.match(unknown.stderr, /frobnicate/);
});

test.run();
