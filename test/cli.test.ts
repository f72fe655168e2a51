/**
 * The command line as users and CI drive it: writing, --check, the output directory's
 * guarantees (the manifest removes only what gen-lab wrote, nothing of the user's is
 * overwritten or followed, a killed or concurrent run never leaves a mix), determinism,
 * --help and --version.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { BIN, ROOT, readTree, runCli, skipped, tempDir } from "./helpers.js";

const FOO = path.join(ROOT, "labs", "foo.yaml");
const FOO_TEXT = fs.readFileSync(FOO, "utf8");
const SYSCTL = "foo/runners/foo-1/rootfs/etc/sysctl.d/90-gen-lab-foo.conf";

/** A temporary directory with the example lab written out as it is, or changed. */
function withLab(
  body: (dir: string, lab: string, out: string) => void,
  text = FOO_TEXT,
): void {
  const { dir, cleanup } = tempDir();
  try {
    const lab = path.join(dir, "foo.yaml");
    fs.writeFileSync(lab, text);
    body(dir, lab, path.join(dir, "out"));
  } finally {
    cleanup();
  }
}

test("writes every file of artifacts.md with its mode", () => {
  withLab((_dir, lab, out) => {
    const r = runCli([lab, "-o", out]);
    assert.is(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^gen-lab: \S+: 1 lab\(s\): \d+ written, 0 unchanged, 0 removed\n$/,
    );
    const tree = readTree(out);
    const expect: [string, number][] = [["foo/.gen-lab-manifest.json", 0o644]];
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
    for (const [p, mode] of expect)
      assert.is(
        tree.get(p)?.mode.toString(8),
        mode.toString(8),
        `mode of ${p}`,
      );
  });
});

test("the output directory gen-lab makes is 0755 whatever the umask, and so are the lab's directories", () => {
  withLab((dir, lab) => {
    const out = path.join(dir, "a", "b");
    const r = spawnSync(
      "sh",
      [
        "-c",
        `umask 077 && exec "$0" "$@"`,
        process.execPath,
        BIN,
        lab,
        "-o",
        out,
      ],
      { encoding: "utf8" },
    );
    assert.is(r.status, 0, r.stderr);
    for (const d of ["a", "a/b", "a/b/foo", "a/b/foo/runners/foo-1/rootfs/etc"])
      assert.is(
        (fs.statSync(path.join(dir, d)).mode & 0o777).toString(8),
        "755",
        d,
      );
    assert.is(
      (fs.statSync(path.join(out, SYSCTL)).mode & 0o777).toString(8),
      "644",
    );
  });
});

test("--check: 0 when up to date, 1 with a unified diff when not, and it writes nothing", () => {
  withLab((_dir, lab, out) => {
    assert.is(runCli([lab, "-o", out, "--check"]).status, 1);
    assert.not.ok(fs.existsSync(out), "--check created nothing");
    assert.is(runCli([lab, "-o", out]).status, 0);
    const clean = runCli([lab, "-o", out, "--check"]);
    assert.is(clean.status, 0, clean.stdout + clean.stderr);
    fs.writeFileSync(path.join(out, SYSCTL), "net.ipv4.ip_forward = 0\n");
    const before = readTree(out);
    const stale = runCli([lab, "-o", out, "--check"]);
    assert.is(stale.status, 1);
    assert.match(
      stale.stdout,
      new RegExp(`^--- a/${SYSCTL.replace(/\./g, "\\.")}`, "m"),
    );
    assert.match(stale.stdout, /^-net\.ipv4\.ip_forward = 0$/m);
    assert.match(stale.stdout, /^\+net\.ipv4\.ip_forward = 1$/m);
    assert.match(
      stale.stderr,
      /is stale \(1 lab\(s\): 1 to write, \d+ unchanged, 0 to remove\)/,
    );
    assert.match(
      stale.stderr,
      /foo\/runners\/foo-1\/rootfs\/\S+:1:1: is out of date: the output is stale/,
    );
    assert.equal(readTree(out), before, "--check wrote nothing");
  });
});

test("--check shows a file's terminal escapes escaped", () => {
  withLab((_dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    fs.appendFileSync(
      path.join(out, "foo/README.md"),
      "evil \u001b]0;title\u0007 \u202Egnp.exe\tend\n",
    );
    const r = runCli([lab, "-o", out, "--check"]);
    assert.is(r.status, 1);
    assert.not.match(r.stdout, /[\u001b\u0007\u202E]/);
    assert.match(
      r.stdout,
      /^-evil \\u\{1B\}\]0;title\\u\{7\} \\u\{202E\}gnp\.exe\tend$/m,
    );
  });
});

test("--check compares only the executable bit of modes (what version control keeps); a write restores the exact modes", () => {
  withLab((_dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    const keyfile = path.join(
      out,
      "foo/runners/foo-1/rootfs/etc/NetworkManager/system-connections/foo-vpn.nmconnection",
    );
    fs.chmodSync(keyfile, 0o644);
    assert.is(
      runCli([lab, "-o", out, "--check"]).status,
      0,
      "0644 for 0600 is no drift",
    );
    const dispatcher = path.join(
      out,
      "foo/runners/foo-1/rootfs/etc/NetworkManager/dispatcher.d/90-gen-lab-foo",
    );
    fs.chmodSync(dispatcher, 0o644);
    const r = runCli([lab, "-o", out, "--check"]);
    assert.is(r.status, 1, "a lost executable bit is drift");
    assert.is(runCli([lab, "-o", out]).status, 0);
    assert.is(fs.statSync(keyfile).mode & 0o777, 0o600);
    assert.is(fs.statSync(dispatcher).mode & 0o777, 0o755);
  });
});

test("the manifest: files the lab no longer makes are removed; the user's files and edited old files are kept", () => {
  withLab((_dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    fs.writeFileSync(path.join(out, "foo/NOTES.md"), "mine\n", { mode: 0o640 });
    fs.mkdirSync(path.join(out, "foo/runners/foo-1/mine"), { mode: 0o700 });
    fs.symlinkSync("/etc/hostname", path.join(out, "foo/link"));
    // One runner less: foo-2's files are no longer made; one of them was edited.
    const one = FOO_TEXT.replace(/ {4}us-east-1b: .*\n/, "").replace(
      / {2}- name: foo-2\n[^]*?(?=\n\n)/,
      "",
    );
    fs.writeFileSync(lab, one);
    const edited = path.join(out, "foo/runners/foo-2/worker-user-data.yaml");
    fs.appendFileSync(edited, "# mine\n");
    const r = runCli([lab, "-o", out]);
    assert.is(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /foo\/runners\/foo-2\/worker-user-data\.yaml:1:1: warning: is no longer generated, but it was edited/,
    );
    assert.ok(fs.existsSync(edited), "the edited file is kept");
    assert.not.ok(
      fs.existsSync(path.join(out, "foo/runners/foo-2/rootfs")),
      "foo-2's generated files are gone",
    );
    assert.is(
      fs.readFileSync(path.join(out, "foo/NOTES.md"), "utf8"),
      "mine\n",
    );
    assert.is(fs.statSync(path.join(out, "foo/NOTES.md")).mode & 0o777, 0o640);
    assert.is(
      fs.statSync(path.join(out, "foo/runners/foo-1/mine")).mode & 0o777,
      0o700,
    );
    assert.is(
      fs.readlinkSync(path.join(out, "foo/link")),
      "/etc/hostname",
      "a link is carried as a link",
    );
    assert.ok(fs.existsSync("/etc/hostname"));
  });
});

test("a file, link or directory of the user's where gen-lab writes is refused with exit 2, by a write and by --check, and nothing changes", () => {
  for (const plant of [
    (p: string) => fs.writeFileSync(p, "mine\n"),
    (p: string) => fs.symlinkSync("/etc/passwd", p),
    (p: string) => fs.mkdirSync(p),
  ])
    withLab((_dir, lab, out) => {
      assert.is(runCli([lab, "-o", out]).status, 0);
      // A path the lab's manifest does not list: a new runner's file.
      const two = FOO_TEXT.replace("foo-2", "foo-3").replace(
        "foo-2.key",
        "foo-3.key",
      );
      fs.writeFileSync(lab, two);
      const target = path.join(out, "foo/runners/foo-3");
      fs.mkdirSync(target, { recursive: true });
      plant(path.join(target, "worker-user-data.yaml"));
      const before = readTree(out);
      for (const args of [[], ["--check"]]) {
        const r = runCli([lab, "-o", out, ...args]);
        assert.is(r.status, 2, r.stdout + r.stderr);
        assert.match(
          r.stderr,
          /worker-user-data\.yaml is a (file|link|directory) of yours where gen-lab writes a file/,
        );
      }
      assert.equal(readTree(out), before);
      assert.ok(fs.readFileSync("/etc/passwd", "utf8").length > 0);
    });
});

test("a lab directory that is a link or a file, or a non-empty directory without gen-lab's manifest, is never taken over", () => {
  withLab((dir, lab, out) => {
    fs.mkdirSync(out);
    const elsewhere = path.join(dir, "elsewhere");
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(out, "foo"));
    let r = runCli([lab, "-o", out]);
    assert.is(r.status, 2);
    assert.match(r.stderr, /foo is a symbolic link/);
    assert.equal(fs.readdirSync(elsewhere), []);
    fs.unlinkSync(path.join(out, "foo"));
    fs.writeFileSync(path.join(out, "foo"), "x");
    r = runCli([lab, "-o", out]);
    assert.is(r.status, 2);
    assert.match(r.stderr, /foo is not a directory/);
    fs.unlinkSync(path.join(out, "foo"));
    // `-o /` with a lab named etc: a live directory that is not gen-lab's.
    fs.mkdirSync(path.join(out, "foo"));
    fs.writeFileSync(path.join(out, "foo", "passwd"), "root:x:0:0\n");
    r = runCli([lab, "-o", out]);
    assert.is(r.status, 2);
    assert.match(r.stderr, /is not empty and has no \.gen-lab-manifest\.json/);
    assert.equal(fs.readdirSync(path.join(out, "foo")), ["passwd"]);
    r = runCli([lab, "-o", lab]);
    assert.is(r.status, 2);
    assert.match(r.stderr, /is not a directory/);
  });
});

test("--check never reads through a link, and a manifest naming a path outside is no way out", () => {
  withLab((dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    const secret = path.join(dir, "secret");
    fs.writeFileSync(secret, "net.ipv4.ip_forward = 1 # secret\n");
    fs.rmSync(path.join(out, SYSCTL));
    fs.symlinkSync(secret, path.join(out, SYSCTL));
    const r = runCli([lab, "-o", out, "--check"]);
    assert.is(r.status, 1);
    assert.not.match(r.stdout, /secret/);
    assert.is(
      runCli([lab, "-o", out]).status,
      0,
      "a link where a generated file was is replaced by the file",
    );
    assert.ok(fs.lstatSync(path.join(out, SYSCTL)).isFile());
    assert.match(
      fs.readFileSync(secret, "utf8"),
      /# secret/,
      "the link's target is untouched",
    );
  });
});

test("an unchanged lab is not rewritten: an up-to-date read-only tree is fine", () => {
  withLab((_dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    const before = fs.statSync(path.join(out, "foo")).ino;
    const r = runCli([lab, "-o", out]);
    assert.is(r.status, 0);
    assert.match(r.stdout, /: 1 lab\(s\): 0 written, \d+ unchanged, 0 removed/);
    assert.is(
      fs.statSync(path.join(out, "foo")).ino,
      before,
      "the directory was not swapped",
    );
  });
});

test("same bytes under another TZ, LANG and working directory", () => {
  withLab((dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    const other = path.join(dir, "other");
    const r = runCli([path.relative(dir, lab), "-o", "other"], {
      cwd: dir,
      env: {
        TZ: "Pacific/Chatham",
        LANG: "tr_TR.UTF-8",
        LC_ALL: "tr_TR.UTF-8",
      },
    });
    assert.is(r.status, 0, r.stderr);
    assert.equal(readTree(other), readTree(out));
  });
});

test("as an ordinary user: an unreadable directory or file in the lab directory is exit 2 naming it, never a crash", () => {
  if (process.getuid?.() !== 0) {
    skipped("needs root to switch to another user");
    return;
  }
  withLab((dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    spawnSync("chown", ["-R", "nobody", dir]);
    fs.chmodSync(dir, 0o755);
    const locked = path.join(out, "foo/runners/foo-1/rootfs/etc/sysctl.d");
    fs.chmodSync(locked, 0o000);
    const asNobody = (args: string[]) =>
      spawnSync(
        "setpriv",
        [
          "--reuid=nobody",
          "--regid=nogroup",
          "--clear-groups",
          process.execPath,
          BIN,
          ...args,
        ],
        { encoding: "utf8" },
      );
    for (const args of [
      [lab, "-o", out],
      [lab, "-o", out, "--check"],
    ]) {
      const r = asNobody(args);
      assert.is(r.status, 2, r.stderr);
      assert.match(r.stderr, /sysctl\.d: permission denied/);
    }
  });
});

test("a tree nested thousands deep in the lab directory is exit 2 with a message, never exit 3", () => {
  withLab((_dir, lab, out) => {
    try {
      assert.is(runCli([lab, "-o", out]).status, 0);
      // Each step is made relative to the last: the whole path is longer than the kernel takes.
      const made = spawnSync(
        process.execPath,
        [
          "-e",
          'for (let i = 0; i < 3000; i++) { require("fs").mkdirSync("d"); process.chdir("d"); }',
        ],
        { cwd: path.join(out, "foo") },
      );
      assert.is(made.status, 0);
      for (const args of [[], ["--check"]]) {
        const r = runCli([lab, "-o", out, ...args]);
        assert.is(r.status, 2, r.stderr);
        assert.match(r.stderr, /^gen-lab: .*name too long/m);
      }
    } finally {
      spawnSync("rm", ["-rf", out]);
    }
  });
});

test("lab files inside a lab directory the run replaces are refused; lab files that are not regular files too", () => {
  withLab((dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    const inside = path.join(out, "foo", "foo.yaml");
    fs.copyFileSync(lab, inside);
    let r = runCli([inside, "-o", out]);
    assert.is(r.status, 2);
    assert.match(
      r.stderr,
      /this lab file lies in .*foo, which gen-lab replaces/,
    );
    r = runCli([dir, "-o", out]);
    assert.is(r.status, 2);
    assert.match(r.stderr, /is not a regular file/);
    spawnSync("mkfifo", [path.join(dir, "fifo.yaml")]);
    r = runCli([path.join(dir, "fifo.yaml"), "-o", out]);
    assert.is(r.status, 2, "a FIFO does not block");
    assert.match(r.stderr, /is not a regular file/);
  });
});

test("--help, --version and usage errors", () => {
  const help = runCli(["--help"]);
  assert.is(help.status, 0);
  assert.match(help.stdout, /gen-lab <lab\.yaml\.\.\.> -o <dir>/);
  assert.match(help.stdout, /--check/);
  const version = runCli(["--version"]);
  assert.is(version.status, 0);
  assert.is(
    version.stdout.trim(),
    JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"))
      .version,
  );
  for (const args of [
    [],
    [FOO],
    [FOO, "-o"],
    [FOO, "-o", ""],
    [FOO, "-o", "x", "--bogus"],
    ["-", "-o", "x"],
    [FOO, "-o", "a", "-o", "b"],
  ]) {
    const r = runCli(args);
    assert.is(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /Run gen-lab --help for usage/);
    assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
  }
});

test("a reader that goes away behind stdout keeps the run's exit code, without a stack trace", () => {
  withLab((_dir, lab, out) => {
    assert.is(runCli([lab, "-o", out]).status, 0);
    fs.appendFileSync(path.join(out, "foo/README.md"), "x\n".repeat(5000));
    const r = spawnSync(
      "sh",
      [
        "-c",
        `"$0" "$1" "$2" -o "$3" --check | head -c 1 >/dev/null; echo "rc=\${PIPESTATUS:-$?}"`,
        process.execPath,
        BIN,
        lab,
        out,
      ],
      { encoding: "utf8" },
    );
    assert.not.match(r.stderr, /\n\s+at /);
  });
});

/** Trees of the example lab at two ports: each run writes one of them whole. */
function variants(dir: string): { lab: string; out: string; trees: string[] } {
  const a = path.join(dir, "a");
  const b = path.join(dir, "b");
  for (const d of [a, b]) fs.mkdirSync(d);
  fs.writeFileSync(path.join(a, "foo.yaml"), FOO_TEXT);
  fs.writeFileSync(
    path.join(b, "foo.yaml"),
    FOO_TEXT.replace("port: 1194 ", "port: 1190 "),
  );
  const trees = [a, b].map((d) => {
    assert.is(
      runCli([path.join(d, "foo.yaml"), "-o", path.join(d, "out")]).status,
      0,
    );
    return JSON.stringify([...readTree(path.join(d, "out"))]);
  });
  return { lab: path.join(dir, "foo.yaml"), out: path.join(dir, "out"), trees };
}

function run(
  args: string[],
): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (status) => resolve({ status, stderr }));
  });
}

test("two runs at once: the lab is a whole tree of one of them, and a run that lost says so with exit 2", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { out, trees } = variants(dir);
    let refused = 0;
    for (let i = 0; i < 12; i++) {
      fs.rmSync(out, { recursive: true, force: true });
      if (i % 2)
        assert.is(
          runCli([path.join(dir, "a/foo.yaml"), "-o", out, "-q"]).status,
          0,
        );
      const results = await Promise.all(
        ["a", "b"].map((v) =>
          run([path.join(dir, v, "foo.yaml"), "-o", out, "-q"]),
        ),
      );
      for (const r of results) {
        assert.ok(r.status === 0 || r.status === 2, r.stderr);
        if (r.status === 2) {
          refused++;
          assert.match(r.stderr, /was replaced by another gen-lab run/);
        }
      }
      const tree = JSON.stringify([...readTree(out)]);
      assert.ok(trees.includes(tree), `run ${i}: the tree is one run's, whole`);
      assert.equal(
        fs.readdirSync(out).filter((n) => n.startsWith(".")),
        [],
        "nothing left beside it",
      );
    }
    console.log(`  (${refused} of 24 runs ended with exit 2)`);
  } finally {
    cleanup();
  }
});

test("SIGKILL at random moments of a rewrite of 20 labs: each lab is its old or its new tree", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    const write = (port: number) =>
      syntheticLabs(20, { port }).map((l: { file: string; text: string }) => {
        const file = path.join(dir, `${port}`, l.file);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, l.text);
        return file;
      });
    const [old, next] = [write(1194), write(1195)];
    const treeOf = (labs: string[]) => {
      const o = path.join(dir, `ref-${labs === old ? "old" : "new"}`);
      assert.is(runCli([...labs, "-o", o, "-q"]).status, 0);
      return o;
    };
    const refOld = treeOf(old);
    const refNew = treeOf(next);
    for (let i = 0; i < 8; i++) {
      fs.rmSync(out, { recursive: true, force: true });
      fs.cpSync(refOld, out, { recursive: true });
      const p = spawn(process.execPath, [BIN, ...next, "-o", out, "-q"], {
        stdio: "ignore",
      });
      await new Promise((r) => setTimeout(r, 60 + i * 40));
      p.kill("SIGKILL");
      await new Promise((r) => p.on("close", r));
      // The next run finishes what the killed one began.
      for (const lab of fs.readdirSync(refOld)) {
        const now = JSON.stringify([...readTree(path.join(out, lab))]);
        const before = JSON.stringify([...readTree(path.join(refOld, lab))]);
        const after = JSON.stringify([...readTree(path.join(refNew, lab))]);
        const setAside = fs
          .readdirSync(out)
          .some((n) => n.startsWith(`.${lab}.gen-lab-old-`));
        assert.ok(
          now === before ||
            now === after ||
            (!fs.existsSync(path.join(out, lab)) && setAside),
          `${lab} after kill ${i}`,
        );
      }
      assert.is(runCli([...next, "-o", out, "-q"]).status, 0);
      assert.is(
        runCli([...next, "-o", out, "--check", "-q"]).status,
        0,
        "the next run completes the tree",
      );
    }
  } finally {
    cleanup();
  }
});

test.run();
