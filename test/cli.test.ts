/**
 * The command line as users and CI drive it: writing, --check, the manifest's promise
 * (remove only what gen-lab wrote), determinism across environments, --help and --version.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { nonUtf8Arguments } from "../src/cli.js";
import { BIN, otherLab, ROOT, readTree, runCli, tempDir } from "./helpers.js";

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
    assert.match(stale.stderr, /is stale: foo: 17 files: 0 added, 1 changed/);
    assert.equal(readTree(dir), before, "--check wrote nothing");
  } finally {
    cleanup();
  }
});

test("--check shows a file's terminal escapes and bidi overrides escaped, and names the stale labs (ten, then a count)", () => {
  const { dir, cleanup } = tempDir();
  try {
    const labs = syntheticLabs(12).map((l) => {
      const file = path.join(dir, l.file);
      fs.writeFileSync(file, l.text);
      return file;
    });
    const out = path.join(dir, "out");
    assert.is(runCli([...labs, "-o", out, "-q"]).status, 0);
    const names = fs.readdirSync(out).sort();
    for (const lab of names)
      fs.appendFileSync(
        path.join(out, lab, "README.md"),
        "evil \u001b]0;title\u0007 \u001b[2J \u202Egnp.exe\tend\r\n",
      );
    const r = runCli([...labs, "-o", out, "--check"]);
    assert.is(r.status, 1, r.stderr);
    assert.not.match(r.stdout, /[\u001b\u0007\u202E\r]/);
    assert.match(
      r.stdout,
      /^-evil \\u\{1B\}\]0;title\\u\{7\} \\u\{1B\}\[2J \\u\{202E\}gnp\.exe\tend\\u\{D\}$/m,
    );
    assert.match(
      r.stderr,
      new RegExp(
        `is stale: ${names
          .slice(0, 10)
          .map(
            (n) =>
              `${n}: \\d+ files: 0 added, 1 changed, 0 removed, \\d+ unchanged`,
          )
          .join("; ")}; 2 more labs\\.`,
      ),
    );
  } finally {
    cleanup();
  }
});

test("--check bounds its diff: a long file, or one with thousands of changed lines, is named, not diffed", () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.is(runCli([FOO, "-o", dir]).status, 0);
    const lines = (n: number, word: string) =>
      Array.from({ length: n }, (_, i) => `${word} ${i}\n`).join("");
    fs.writeFileSync(path.join(dir, "foo/README.md"), lines(30_000, "old"));
    fs.writeFileSync(
      path.join(dir, "foo/terraform/foo.tf.json"),
      lines(5_000, "old"),
    );
    const started = Date.now();
    const r = runCli([FOO, "-o", dir, "--check"]);
    assert.is(r.status, 1, r.stderr);
    assert.match(
      r.stdout,
      /^\+\+\+ b\/foo\/README\.md\n\(not diffed: a file of over 20000 lines\)$/m,
    );
    assert.match(
      r.stdout,
      /^\+\+\+ b\/foo\/terraform\/foo\.tf\.json\n\(not diffed: over 2000 lines differ among 5000 before and \d+ after\)$/m,
    );
    assert.match(r.stderr, /2 changed/);
    assert.ok(Date.now() - started < 20_000, "a bounded diff");
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

/** The example lab copied into a temporary directory and written to `out` beside it. */
function withFooWritten(check: (lab: string, out: string) => void): void {
  const { dir, cleanup } = tempDir();
  try {
    const lab = path.join(dir, "foo.yaml");
    fs.writeFileSync(lab, fs.readFileSync(FOO));
    const out = path.join(dir, "out");
    assert.is(runCli([lab, "-o", out]).status, 0);
    check(lab, out);
  } finally {
    cleanup();
  }
}

test("the manifest: files the lab no longer produces are removed, files gen-lab did not write are kept", () => {
  withFooWritten((lab, out) => {
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
  });
});

test("the manifest: a file the lab no longer produces that was edited since, or a file a changed manifest lists, is kept with a warning", () => {
  withFooWritten((lab, out) => {
    const edited = "foo/runners/foo-2/worker-user-data.yaml";
    fs.appendFileSync(path.join(out, edited), "# my tweak\n");
    const untouched =
      "foo/runners/foo-2/rootfs/etc/sysctl.d/90-gen-lab-foo.conf";
    assert.ok(fs.existsSync(path.join(out, untouched)), untouched);
    // Someone lists a file of theirs in the manifest, with a made-up hash.
    fs.writeFileSync(path.join(out, "foo", "mine.txt"), "mine\n");
    const manifestFile = path.join(out, "foo", ".gen-lab-manifest.json");
    const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
    manifest.files.push({
      path: "mine.txt",
      mode: "0644",
      sha256: "0".repeat(64),
    });
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    fs.writeFileSync(
      lab,
      fs.readFileSync(FOO, "utf8").replace("- name: foo-2", "- name: foo-3"),
    );
    const warning = (file: string) =>
      new RegExp(
        `warning: ${file.replace(/[.]/g, "\\.")} is no longer generated, but it was edited since gen-lab wrote it`,
      );
    // --check says what a write would do: the two are kept, not removed.
    const check = runCli([lab, "-o", out, "--check"]);
    assert.is(check.status, 1, check.stderr);
    for (const f of [edited, "foo/mine.txt"]) {
      assert.match(check.stderr, warning(f));
      assert.not.match(check.stdout, `--- a/${f}`);
    }
    assert.match(check.stdout, `--- a/${untouched}`);
    const r = runCli([lab, "-o", out]);
    assert.is(r.status, 0, r.stderr);
    for (const f of [edited, "foo/mine.txt"])
      assert.match(r.stderr, warning(f));
    const tree = readTree(out);
    assert.match(tree.get(edited)?.contents ?? "", /# my tweak\n$/);
    assert.is(tree.get("foo/mine.txt")?.contents, "mine\n");
    assert.not.ok(tree.has(untouched), "an untouched stale file is removed");
    // Now the user's files: the next runs neither warn nor touch them.
    const again = runCli([lab, "-o", out]);
    assert.is(again.status, 0, again.stderr);
    assert.is(again.stderr, "");
    assert.ok(readTree(out).has(edited));
  });
});

test("--check refuses what a write would refuse: something of the user's in the way of a generated file or directory", () => {
  for (const [what, block] of [
    [
      "a directory where the README goes",
      (out: string) => {
        fs.rmSync(path.join(out, "foo", "README.md"));
        fs.mkdirSync(path.join(out, "foo", "README.md"));
        fs.writeFileSync(
          path.join(out, "foo", "README.md", "notes.txt"),
          "x\n",
        );
      },
    ],
    [
      "a link where a generated directory goes",
      (out: string) => {
        const moved = path.join(path.dirname(out), "elsewhere");
        fs.renameSync(path.join(out, "foo", "pipeline-data"), moved);
        fs.symlinkSync(moved, path.join(out, "foo", "pipeline-data"));
      },
    ],
  ] as const)
    withFooWritten((lab, out) => {
      block(out);
      const check = runCli([lab, "-o", out, "--check"]);
      const write = runCli([lab, "-o", out]);
      assert.is(write.status, 2, `${what}: ${write.stderr}`);
      assert.is(check.status, 2, `${what}: --check said ${check.stderr}`);
      const reason = (r: { stderr: string }) => r.stderr.split("\n")[0];
      assert.is(reason(check), reason(write), what);
      assert.match(
        reason(check),
        /gen-lab did not write\) is in the way of the generated/,
      );
    });
});

test("a file of the user's where gen-lab writes one is never overwritten; an old copy of the output is", () => {
  const { dir, cleanup } = tempDir();
  try {
    const lab = path.join(dir, "foo.yaml");
    fs.writeFileSync(lab, fs.readFileSync(FOO));
    // A directory gen-lab never wrote (no manifest), holding a README of the user's.
    const out = path.join(dir, "own");
    fs.mkdirSync(path.join(out, "foo"), { recursive: true });
    fs.writeFileSync(path.join(out, "foo", "README.md"), "mine\n");
    const before = readTree(out);
    const write = runCli([lab, "-o", out]);
    const check = runCli([lab, "-o", out, "--check"]);
    for (const r of [write, check]) {
      assert.is(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        /own\/foo\/README\.md \(a file gen-lab did not write: the lab's manifest does not list it\) is where gen-lab writes foo\/README\.md/,
      );
      assert.match(r.stderr, /move it out of the lab directory/);
      assert.not.match(r.stderr, /\n\s+at /);
    }
    assert.equal(readTree(out), before, "nothing written");

    // The same README as gen-lab makes (a tree whose manifest was lost): taken over.
    const fresh = path.join(dir, "fresh");
    assert.is(runCli([lab, "-o", fresh]).status, 0);
    fs.writeFileSync(
      path.join(out, "foo", "README.md"),
      fs.readFileSync(path.join(fresh, "foo", "README.md")),
    );
    const again = runCli([lab, "-o", out]);
    assert.is(again.status, 0, again.stderr);
    assert.equal(readTree(out), readTree(fresh));
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
  for (const [argv, message] of [
    [
      ["-x.yaml", "-o", "out"],
      /write it as \.\/-x\.yaml, or put -- after the options/,
    ],
    [["-x.yaml", "--out=out"], /write it as \.\/-x\.yaml/],
    [
      ["-", "-o", "out"],
      /a lab is read from a file, not from standard input \("-"\)/,
    ],
    [[FOO, "-oo"], /-o\/--out may be given once \(-oo is -o twice/],
  ] as const) {
    const r = runCli([...argv]);
    assert.is(r.status, 2, argv.join(" "));
    assert.match(r.stderr, message);
  }
  // A value on a flag: yargs read anything but `true` as false, so `--check=1` wrote the tree.
  const { dir, cleanup } = tempDir("gen-lab-flag-value-");
  try {
    const out = path.join(dir, "out");
    for (const flag of ["--check=1", "--check=yes", "--check=", "-q=x"]) {
      const r = runCli([FOO, "-o", out, flag]);
      assert.is(r.status, 2, flag);
      assert.match(r.stderr, /takes no value/, flag);
      assert.not.ok(fs.existsSync(out), `${flag}: nothing written`);
    }
    assert.is(runCli([FOO, "-o", out, "--check=true"]).status, 1);
    assert.not.ok(fs.existsSync(out));
  } finally {
    cleanup();
  }
  const dashed = runCli([FOO, "-o", "-dash"]);
  assert.is(dashed.status, 2);
  assert.match(
    dashed.stderr,
    /write it as \.\/-dash or --out=-dash/,
    "a path that reads as options gets a way to write it",
  );
});

/** The example lab copied into dir under another file name and generated into dir/out. */
function generateUnder(dir: string, name: string): string {
  const lab = path.join(dir, name);
  fs.copyFileSync(FOO, lab);
  const out = path.join(dir, "out");
  const r = runCli([lab, "-o", out, "-q"]);
  assert.is(r.status, 0, r.stderr);
  return out;
}

test("a lab file name with characters YAML allows nowhere still gives YAML files PyYAML reads", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = generateUnder(dir, "f\uFFFEo\uFFFF.yaml");
    const yamlFiles = readTreeFiles(out).filter((f) => /\.yaml$/.test(f));
    assert.ok(yamlFiles.length >= 4, yamlFiles.join(" "));
    const load = spawnSync(
      "python3",
      [
        "-c",
        "import sys, yaml\nfor f in sys.argv[1:]:\n    list(yaml.safe_load_all(open(f, encoding='utf-8')))",
        ...yamlFiles,
      ],
      { encoding: "utf8" },
    );
    assert.is(load.status, 0, load.stderr);
  } finally {
    cleanup();
  }
});

test("a lab file name cannot end the README's comment, break its code span or reorder a comment with bidi controls", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = generateUnder(dir, "x--><img src=x>`$(id)`\u202Eyaml.txt.yaml");
    const readme = fs.readFileSync(path.join(out, "foo", "README.md"), "utf8");
    const first = readme.split("\n")[0]!;
    assert.ok(first.startsWith("<!-- ") && first.endsWith(" -->"), first);
    assert.not.ok(first.slice(4, -3).includes("--"), `one comment: ${first}`);
    assert.match(
      readme,
      "generated by gen-lab from ``x--><img src=x>`$(id)`?yaml.txt.yaml``.",
    );
    for (const f of readTreeFiles(out))
      assert.not.ok(
        fs.readFileSync(f, "utf8").includes("\u202E"),
        `${f} holds a bidi override`,
      );
  } finally {
    cleanup();
  }
});

/** Every regular file below `dir`, as full paths. */
function readTreeFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

test("paths from the command line reach the terminal escaped, and errno codes come with words", () => {
  const { dir, cleanup } = tempDir();
  try {
    const odd = path.join(dir, "a\nb\u001b[2J");
    const r = runCli([FOO, "-o", odd]);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /a\\u\{A\}b\\u\{1B\}\[2J\/foo: 17 files/);
    assert.not.match(r.stdout, /\u001b/);
    const loop = path.join(dir, "loop.yaml");
    fs.symlinkSync(loop, loop);
    const looped = runCli([loop, "-o", path.join(dir, "out")]);
    assert.is(looped.status, 2);
    assert.match(
      looped.stderr,
      /cannot read: too many levels of symbolic links \(ELOOP\)/,
    );
  } finally {
    cleanup();
  }
});

/** A usage or output problem: exit 2, a one-line reason, no stack trace. */
function assertRefused(r: ReturnType<typeof runCli>, reason: RegExp): void {
  assert.is(r.status, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, reason);
  assert.not.match(r.stderr, /internal error|\n\s+at /);
}

test("a path that is not valid UTF-8 is a usage error naming it; nothing is written, not even beside it", () => {
  const { dir, cleanup } = tempDir();
  try {
    const lab = path.join(ROOT, "labs", "foo.yaml");
    // Bytes no UTF-8 decoder accepts: Node's argv has U+FFFD for each.
    const at = (latin1: string) =>
      Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(latin1, "latin1")]);
    fs.writeFileSync(at("lab\xff.yaml"), fs.readFileSync(lab));
    fs.mkdirSync(at("out\xff"));
    const shell = (args: string) =>
      spawnSync(
        "bash",
        [
          "-c",
          `"$0" "$1" ${args}`,
          process.execPath,
          path.join(ROOT, "bin", "gen-lab.js"),
        ],
        {
          cwd: dir,
          encoding: "utf8",
        },
      );
    const before = fs
      .readdirSync(dir, { encoding: "buffer" })
      .map((b) => b.toString("hex"))
      .sort();
    for (const [args, shown] of [
      [`"${lab}" -o "$(printf 'out\\377')"`, "out\uFFFD"],
      [`"$(printf 'lab\\377.yaml')" -o out`, "lab\uFFFD.yaml"],
      [
        `"$(printf 'lab\\355\\240\\200.yaml')" -o out --check`,
        "lab\uFFFD\uFFFD\uFFFD.yaml",
      ],
    ] as const) {
      const r = shell(args);
      assert.is(r.status, 2, `${args}: ${r.stderr}`);
      assert.match(
        r.stderr,
        `the argument ${JSON.stringify(shown)} is not valid UTF-8`,
      );
      assert.not.match(r.stderr, /\n\s+at /);
    }
    assert.equal(
      fs
        .readdirSync(dir, { encoding: "buffer" })
        .map((b) => b.toString("hex"))
        .sort(),
      before,
      "nothing new beside the directory given",
    );
    assert.equal(fs.readdirSync(at("out\xff")), []);
    // Without the kernel's copy of the command line, a U+FFFD is taken for a byte that was lost.
    assert.equal(nonUtf8Arguments(["a\uFFFD", "b"], undefined), ["a\uFFFD"]);
    assert.equal(
      nonUtf8Arguments(
        ["a\uFFFD", "b"],
        Buffer.from("node\0cli\0a\uFFFD\0b\0"),
      ),
      [],
    );
    // A name that holds U+FFFD itself, written as UTF-8, is a name like any other.
    const r = shell(`"${lab}" -o "$(printf 'out\\357\\277\\275')"`);
    assert.is(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(dir, "out\uFFFD", "foo", "README.md")));
  } finally {
    cleanup();
  }
});

test("-o on a kernel file system says so, not that a path is missing", () => {
  assertRefused(
    runCli([FOO, "-o", "/proc"]),
    /cannot write \/proc\/\.gen-lab\.lock\.\d+\.new: \/proc takes no new files \(ENOENT\): it is on a kernel file system.*; choose an output directory on a real file system/,
  );
});

test("an empty or repeated -o is a usage error, even with --check", () => {
  assertRefused(
    runCli([FOO, "-o", ""]),
    /-o\/--out needs the output directory/,
  );
  assertRefused(
    runCli([FOO, "--check", "--out="]),
    /needs the output directory/,
  );
  assertRefused(runCli([FOO, "-o"]), /./);
  assertRefused(
    runCli([FOO, "-o", "a", "-o", "b"]),
    /-o\/--out may be given once/,
  );
});

test("a lab directory that is a symbolic link or a file is refused, and nothing behind it is touched", () => {
  const { dir, cleanup } = tempDir();
  try {
    const elsewhere = path.join(dir, "deploy");
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, "precious.txt"), "keep\n");
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    fs.symlinkSync(elsewhere, path.join(out, "foo"));
    for (const extra of [[], ["--check"]])
      assertRefused(
        runCli([FOO, "-o", out, ...extra]),
        /out\/foo is a symbolic link, not the directory gen-lab writes/,
      );
    assert.equal(fs.readdirSync(elsewhere), ["precious.txt"]);
    assert.ok(fs.lstatSync(path.join(out, "foo")).isSymbolicLink());

    const out2 = path.join(dir, "out2");
    fs.mkdirSync(out2);
    fs.writeFileSync(path.join(out2, "foo"), "mine\n");
    assertRefused(runCli([FOO, "-o", out2]), /out2\/foo is a file/);
    assert.equal(fs.readdirSync(out2), ["foo"]);

    fs.writeFileSync(path.join(dir, "file"), "x\n");
    assertRefused(
      runCli([FOO, "-o", path.join(dir, "file")]),
      /is a file, not a directory/,
    );
    fs.symlinkSync(path.join(dir, "nowhere"), path.join(dir, "dangling"));
    assertRefused(
      runCli([FOO, "-o", path.join(dir, "dangling")]),
      /symbolic link to nothing/,
    );
  } finally {
    cleanup();
  }
});

test("--check never reads a file outside the lab directory that a manifest names", () => {
  const { dir, cleanup } = tempDir();
  try {
    const secret = path.join(dir, "secret.txt");
    fs.writeFileSync(secret, "SECRET_TOKEN=hunter2\n");
    const out = path.join(dir, "out");
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    const manifest = path.join(out, "foo", ".gen-lab-manifest.json");
    for (const files of [
      [{ path: path.relative(path.join(out, "foo"), secret) }],
      [{ path: secret }],
      [null, { path: 5 }, { path: "a/../../../secret.txt" }],
    ]) {
      fs.writeFileSync(
        manifest,
        JSON.stringify({ generator: "gen-lab", files }),
      );
      const r = runCli([FOO, "-o", out, "--check"]);
      assert.is(r.status, 1, r.stderr);
      assert.not.match(r.stdout + r.stderr, /hunter2|internal error/);
      // Writing again repairs the manifest and leaves the secret alone.
      assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
      assert.is(fs.readFileSync(secret, "utf8"), "SECRET_TOKEN=hunter2\n");
    }
  } finally {
    cleanup();
  }
});

test("--check after a run killed between its two renames compares the tree set aside", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    fs.renameSync(path.join(out, "foo"), path.join(out, ".foo.gen-lab-old"));
    const r = runCli([FOO, "-o", out, "--check"]);
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /up to date/);
    // The next write puts it back and finds nothing to change.
    const w = runCli([FOO, "-o", out]);
    assert.match(w.stdout, /unchanged/);
    assert.equal(fs.readdirSync(out), ["foo"]);
  } finally {
    cleanup();
  }
});

test("lab files that are not regular files, or that lie in a directory the run replaces", () => {
  const { dir, cleanup } = tempDir();
  try {
    const fifo = path.join(dir, "fifo.yaml");
    spawnSync("mkfifo", [fifo]);
    for (const file of [fifo, "/dev/zero"]) {
      const r = runCli([file, "-o", path.join(dir, "out")]);
      assertRefused(r, /is not a regular file/);
    }
    const inside = path.join(dir, "out", "foo", "pipeline-data", "foo.yaml");
    fs.mkdirSync(path.dirname(inside), { recursive: true });
    fs.copyFileSync(FOO, inside);
    assertRefused(
      runCli([inside, "-o", path.join(dir, "out")]),
      /lies in .*out\/foo, which this run replaces/,
    );
    assert.is(fs.readFileSync(inside, "utf8"), fs.readFileSync(FOO, "utf8"));
    // The same file twice is one lab, not a clash with itself, whatever name it goes by.
    const hard = path.join(dir, "hard.yaml");
    const soft = path.join(dir, "soft.yaml");
    fs.linkSync(FOO, hard);
    fs.symlinkSync(FOO, soft);
    const twice = runCli([FOO, FOO, hard, soft, "-o", path.join(dir, "twice")]);
    assert.is(twice.status, 0, twice.stderr);
    assert.match(twice.stdout, /^gen-lab: .*twice\/foo: 17 files/m);
    // Whatever order the names come in, the headers name the same one: the output is the same.
    const reversed = runCli([
      soft,
      hard,
      FOO,
      "-o",
      path.join(dir, "twice"),
      "--check",
    ]);
    assert.is(reversed.status, 0, reversed.stdout + reversed.stderr);
    // A proc file says it is empty and never ends: read to the cap, then refused.
    const started = Date.now();
    assertRefused(
      runCli(["/proc/self/pagemap", "-o", path.join(dir, "out")]),
      /file is larger than a lab file may be/,
    );
    assert.ok(Date.now() - started < 10_000, "read no further than the cap");
  } finally {
    cleanup();
  }
});

test("one writer at a time: a live run's lock refuses, a killed run's lock is taken over", async () => {
  const { dir, cleanup } = tempDir();
  const sleeper = spawn(
    process.execPath,
    ["-e", "setTimeout(() => {}, 60000)"],
    {
      stdio: "ignore",
    },
  );
  const other = spawn("sleep", ["60"], { stdio: "ignore" });
  try {
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    const lock = path.join(out, ".gen-lab.lock");
    fs.writeFileSync(lock, `${sleeper.pid}\n`);
    assertRefused(
      runCli([FOO, "-o", out]),
      new RegExp(`another gen-lab \\(process ${sleeper.pid}\\) is writing`),
    );
    assert.equal(fs.readdirSync(out), [".gen-lab.lock"]);
    // A live process that is not Node (a PID reused after a killed run, say): stale.
    fs.writeFileSync(lock, `${other.pid}\n`);
    let r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out), ["foo"]);
    fs.rmSync(path.join(out, "foo"), { recursive: true });
    // A lock naming the live Node process and the start time it has: held. With another
    // start time, the PID was reused by a later process (Node or not): stale.
    const stat = fs.readFileSync(`/proc/${sleeper.pid}/stat`, "utf8");
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
    assert.match(start, /^\d+$/);
    const scope = os.hostname().replace(/\s/g, "_");
    const ns = fs.readlinkSync("/proc/self/ns/pid");
    fs.writeFileSync(lock, `${sleeper.pid} ${scope}/${ns} ${start}\n`);
    assertRefused(
      runCli([FOO, "-o", out]),
      new RegExp(`another gen-lab \\(process ${sleeper.pid}\\) is writing`),
    );
    fs.writeFileSync(
      lock,
      `${sleeper.pid} ${scope}/${ns} ${Number(start) - 1}\n`,
    );
    r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out), ["foo"]);
    fs.rmSync(path.join(out, "foo"), { recursive: true });
    fs.writeFileSync(lock, `${sleeper.pid}\n`);
    // Not a lock gen-lab wrote: a FIFO must not block the run.
    const fifo = path.join(dir, "fifo-out");
    fs.mkdirSync(fifo);
    spawnSync("mkfifo", [path.join(fifo, ".gen-lab.lock")]);
    assertRefused(
      runCli([FOO, "-o", fifo]),
      /is not a lock file gen-lab wrote/,
    );
    const exited = once(sleeper, "exit");
    sleeper.kill("SIGKILL");
    await exited; // reaped: no longer a process
    r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out), ["foo"], "the stale lock is gone");
    // A run killed after its last swap leaves an up-to-date tree and its lock: a run with
    // nothing to write still removes the stale lock, and leaves a live one alone.
    fs.writeFileSync(lock, `${sleeper.pid}\n`);
    r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out), ["foo"], "stale lock, nothing to write");
    fs.writeFileSync(lock, `${process.pid}\n`);
    r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out).sort(), [".gen-lab.lock", "foo"]);
  } finally {
    sleeper.kill("SIGKILL");
    other.kill("SIGKILL");
    cleanup();
  }
});

test("ordinary comment styles read in linear time: a #### banner after a bracket, a long header", () => {
  const { dir, cleanup } = tempDir();
  try {
    const text = fs.readFileSync(FOO, "utf8");
    // Each used to take time exponential in its length: hours for these.
    const banner = text.replace(
      /^( {2}cidrs: \[[^\]\n]*\]).*\n/m,
      `$1\n  ${"#".repeat(80)}\n`,
    );
    assert.is.not(banner, text, "the banner follows a line ending in ]");
    const header = `${"#\n".repeat(40)}${"  \n".repeat(40)}${text}`;
    for (const [name, lab] of [
      ["banner", banner],
      ["header", header],
    ] as const) {
      const file = path.join(dir, "foo.yaml");
      fs.writeFileSync(file, lab);
      const t = Date.now();
      const r = runCli([file, "-o", path.join(dir, name), "-q"]);
      assert.is(r.status, 0, `${name}: ${r.stderr}`);
      assert.ok(Date.now() - t < 30_000, `${name}: ${Date.now() - t} ms`);
    }
  } finally {
    cleanup();
  }
});

test("a file with a flood of problems: exit 2 fast, the first 100 shown and the rest counted", () => {
  const { dir, cleanup } = tempDir();
  try {
    const floods: [string, string][] = [
      ["quotes", '"'.repeat(300_000)],
      ["keys", Array.from({ length: 40_000 }, (_, i) => `k${i}: v\n`).join("")],
      ["items", "- 1\n".repeat(250_000)],
    ];
    for (const [name, text] of floods) {
      const file = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(file, text);
      const t = Date.now();
      const r = runCli([file, "-o", path.join(dir, "out")]);
      assertRefused(r, /nothing written/);
      assert.ok(Date.now() - t < 30_000, `${name}: ${Date.now() - t} ms`);
      const shown = r.stderr.split("\n").filter((l) => l.startsWith(file));
      assert.ok(shown.length <= 101, `${name}: ${shown.length} shown`);
    }
    assert.not.ok(fs.existsSync(path.join(dir, "out")));
  } finally {
    cleanup();
  }
});

test("locks: one still being written, or from another host or container, is held; dead drafts go", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    fs.mkdirSync(out);
    const lock = path.join(out, ".gen-lab.lock");
    // An empty lock is one a writer is still writing (gen-lab links its lock in whole, but a
    // file system without hard links falls back to create-then-write): young, it is held.
    fs.writeFileSync(lock, "");
    assertRefused(runCli([FOO, "-o", out]), /its lock is still being written/);
    // Old, it is some killed run's: taken over.
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, past, past);
    let r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out), ["foo"]);
    // A PID from another host or PID namespace cannot be checked from here: held (by a run
    // that has something to write).
    fs.rmSync(path.join(out, "foo"), { recursive: true });
    fs.writeFileSync(lock, `${process.pid} elsewhere/pid:[4026531836]\n`);
    assertRefused(
      runCli([FOO, "-o", out]),
      /process \d+ on elsewhere, in another host or container\) is writing/,
    );
    fs.unlinkSync(lock);
    // A killed run's draft and set-aside lock: removed by the next run, even one that has
    // nothing to write; a live process's draft stays.
    const dead = spawnSync(
      process.execPath,
      ["-e", "process.stdout.write(String(process.pid))"],
      {
        encoding: "utf8",
      },
    );
    const deadPid = dead.stdout.trim();
    fs.writeFileSync(`${lock}.${deadPid}.new`, `${deadPid} x\n`);
    fs.writeFileSync(`${lock}.${deadPid}`, `${deadPid} x\n`);
    fs.writeFileSync(`${lock}.${process.pid}.new`, `${process.pid} x\n`);
    r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(out).sort(), [
      `.gen-lab.lock.${process.pid}.new`,
      "foo",
    ]);
  } finally {
    cleanup();
  }
});

test("the manifest on disk is read only as a small regular file: a FIFO, /dev/zero or a link outside never hang or leak", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    const secret = path.join(dir, "secret");
    fs.writeFileSync(
      secret,
      JSON.stringify({ generator: "gen-lab", files: [{ path: "keep.me" }] }),
    );
    for (const plant of [
      (m: string) => spawnSync("mkfifo", [m]),
      (m: string) => fs.symlinkSync("/dev/zero", m),
      (m: string) => fs.symlinkSync(secret, m),
    ]) {
      fs.rmSync(out, { recursive: true, force: true });
      assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
      const manifest = path.join(out, "foo", ".gen-lab-manifest.json");
      fs.unlinkSync(manifest);
      plant(manifest);
      // A manifest that is not gen-lab's lists nothing: a user file is carried, not removed.
      fs.writeFileSync(path.join(out, "foo", "keep.me"), "mine\n");
      const check = runCli([FOO, "-o", out, "--check"]);
      assert.is(check.status, 1, check.stderr);
      assert.match(check.stdout + check.stderr, /\.gen-lab-manifest\.json/);
      const r = runCli([FOO, "-o", out, "-q"]);
      assert.is(r.status, 0, r.stderr);
      assert.ok(fs.lstatSync(manifest).isFile(), "a real manifest again");
      assert.is(
        fs.readFileSync(path.join(out, "foo", "keep.me"), "utf8"),
        "mine\n",
      );
    }
  } finally {
    cleanup();
  }
});

test("a huge file at a generated path is drift, not a crash; a write replaces it", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    const readme = path.join(out, "foo", "README.md");
    fs.truncateSync(readme, 20 * 1024 * 1024);
    const check = runCli([FOO, "-o", out, "--check"]);
    assert.is(check.status, 1, check.stderr);
    assert.match(check.stdout, /20971520 bytes, too large to show/);
    const r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.is(runCli([FOO, "-o", out, "--check"]).status, 0);
  } finally {
    cleanup();
  }
});

test("a mount point inside a lab directory is refused before anything changes, and never emptied", () => {
  const { dir, cleanup } = tempDir();
  const precious = path.join(dir, "precious");
  const mnt = path.join(dir, "out", "foo", "mnt");
  let mounted = false;
  try {
    const out = path.join(dir, "out");
    const before = fs.readFileSync(FOO, "utf8");
    const changedLab = path.join(dir, "foo.yaml");
    fs.writeFileSync(
      changedLab,
      before.replace(/schedule: .*/, 'schedule: "5 */4 * * *"'),
    );
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    fs.mkdirSync(precious);
    fs.writeFileSync(path.join(precious, "p1"), "x\n");
    fs.mkdirSync(mnt);
    const m = spawnSync("mount", ["--bind", precious, mnt], {
      encoding: "utf8",
    });
    assert.is(m.status, 0, `mount --bind (the tests run as root): ${m.stderr}`);
    mounted = true;
    assertRefused(
      runCli([changedLab, "-o", out]),
      /is a mount point inside a lab directory/,
    );
    assert.equal(fs.readdirSync(precious), ["p1"]);
    assert.equal(
      fs.readdirSync(out).filter((e) => e !== "foo"),
      [],
      "no staging left",
    );
  } finally {
    if (mounted) spawnSync("umount", [mnt]);
    cleanup();
  }
});

test("the user's files carried into a rewritten lab keep their modes, owners and hard links", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    const changedLab = path.join(dir, "foo.yaml");
    fs.writeFileSync(
      changedLab,
      fs
        .readFileSync(FOO, "utf8")
        .replace(/schedule: .*/, 'schedule: "5 */4 * * *"'),
    );
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    const lab = path.join(out, "foo");
    fs.mkdirSync(path.join(lab, "private"), { mode: 0o700 });
    fs.writeFileSync(path.join(lab, "private", "token"), "t\n", {
      mode: 0o600,
    });
    fs.mkdirSync(path.join(lab, "drop"));
    fs.chmodSync(path.join(lab, "drop"), 0o1777);
    fs.mkdirSync(path.join(lab, "runners", "foo-1", "notes"));
    fs.chmodSync(path.join(lab, "runners", "foo-1", "notes"), 0o750);
    fs.writeFileSync(path.join(lab, "a"), "same\n");
    fs.linkSync(path.join(lab, "a"), path.join(lab, "runners", "b"));
    const root = process.getuid?.() === 0;
    if (root) fs.chownSync(path.join(lab, "private", "token"), 1000, 1000);

    const r = runCli([changedLab, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    const mode = (p: string) => fs.lstatSync(path.join(lab, p)).mode & 0o7777;
    assert.is(mode("private"), 0o700);
    assert.is(mode("private/token"), 0o600);
    assert.is(mode("drop"), 0o1777);
    assert.is(mode("runners/foo-1/notes"), 0o750);
    assert.is(
      mode("runners/foo-1"),
      0o755,
      "a generated directory keeps its own mode",
    );
    const a = fs.statSync(path.join(lab, "a"));
    const b = fs.statSync(path.join(lab, "runners", "b"));
    assert.is(a.ino, b.ino, "still one file");
    assert.is(a.nlink, 2);
    if (root) {
      const token = fs.statSync(path.join(lab, "private", "token"));
      assert.equal([token.uid, token.gid], [1000, 1000]);
    }
  } finally {
    cleanup();
  }
});

test("a file the user saves into a lab directory while gen-lab rewrites it is kept", async () => {
  const { dir, cleanup } = tempDir();
  try {
    // Enough labs that the first is staged well before the last, when the swaps begin.
    const labs = syntheticLabs(150);
    const v0 = path.join(dir, "v0");
    const v1 = path.join(dir, "v1");
    fs.mkdirSync(v0);
    fs.mkdirSync(v1);
    for (const l of labs) {
      fs.writeFileSync(path.join(v0, l.file), l.text);
      fs.writeFileSync(
        path.join(v1, l.file),
        l.text.replace("0 */4 * * *", "5 */4 * * *"),
      );
    }
    const out = path.join(dir, "out");
    const files = (d: string) => labs.map((l) => path.join(d, l.file));
    assert.is(runCli([...files(v0), "-o", out, "-q"]).status, 0);
    const first = [...labs.map((l) => l.name)].sort()[0]!;
    fs.writeFileSync(path.join(out, first, "edited"), "before\n");

    const child = spawn(
      process.execPath,
      [BIN, ...files(v1), "-o", out, "-q"],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = once(child, "exit");
    const staging = path.join(out, `.${first}.gen-lab-new`);
    let seen = false;
    for (let i = 0; i < 4000 && !seen && child.exitCode === null; i++) {
      if (fs.existsSync(staging)) seen = true;
      else await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(seen, "the first lab was staged while the others were rendered");
    // Saved while the run builds the other labs: after this lab was copied, before its swap.
    fs.writeFileSync(path.join(out, first, "saved"), "new\n");
    fs.writeFileSync(path.join(out, first, "edited"), "after\n");
    const [code] = await exited;
    assert.is(code, 0, stderr);
    assert.is(fs.readFileSync(path.join(out, first, "saved"), "utf8"), "new\n");
    assert.is(
      fs.readFileSync(path.join(out, first, "edited"), "utf8"),
      "after\n",
    );
    assert.is(runCli([...files(v1), "-o", out, "--check"]).status, 0);
  } finally {
    cleanup();
  }
});

test("--check never reads through a symbolic link inside the lab directory", () => {
  const { dir, cleanup } = tempDir();
  try {
    const elsewhere = path.join(dir, "elsewhere");
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, "foo.yaml"), "SECRET=hunter2\n");
    const out = path.join(dir, "out");
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    fs.rmSync(path.join(out, "foo", "pipeline-data"), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(out, "foo", "pipeline-data"));
    // --check, as writing would, refuses to go past the link the user put there.
    const r = runCli([FOO, "-o", out, "--check"]);
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /a link gen-lab did not write\) is in the way/);
    assert.not.match(r.stdout + r.stderr, /hunter2/);
    // Writing refuses to replace the link, and leaves it alone.
    assertRefused(
      runCli([FOO, "-o", out]),
      /pipeline-data \(a link gen-lab did not write\) is in the way of the generated directory foo\/pipeline-data/,
    );
    assert.ok(
      fs.lstatSync(path.join(out, "foo", "pipeline-data")).isSymbolicLink(),
    );
  } finally {
    cleanup();
  }
});

test("what the user put into a lab directory: carried over, or refused when it cannot be", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    const foo = path.join(out, "foo");
    fs.mkdirSync(path.join(foo, "notes"));
    fs.writeFileSync(path.join(foo, "terraform", "local.tf"), "# mine\n");
    fs.appendFileSync(path.join(foo, "README.md"), "edited\n");
    const r = runCli([FOO, "-o", out, "-q"]);
    assert.is(r.status, 0, r.stderr);
    assert.ok(
      fs.statSync(path.join(foo, "notes")).isDirectory(),
      "empty directory kept",
    );
    assert.is(
      fs.readFileSync(path.join(foo, "terraform", "local.tf"), "utf8"),
      "# mine\n",
    );

    spawnSync("mkfifo", [path.join(foo, "fifo")]);
    fs.appendFileSync(path.join(foo, "README.md"), "edited\n");
    assertRefused(
      runCli([FOO, "-o", out]),
      /foo\/fifo is a FIFO, socket or device/,
    );
    assert.ok(fs.existsSync(path.join(foo, "fifo")));
    fs.rmSync(path.join(foo, "fifo"));

    fs.rmSync(path.join(foo, "kubernetes"), { recursive: true });
    fs.writeFileSync(path.join(foo, "kubernetes"), "mine\n");
    assertRefused(
      runCli([FOO, "-o", out]),
      /foo\/kubernetes \(a file gen-lab did not write\) is in the way of the generated directory/,
    );
  } finally {
    cleanup();
  }
});

test("immutable files: a failed swap is undone for every lab; an old tree that stays is a warning", (context) => {
  const { dir, cleanup } = tempDir();
  const immutable: string[] = [];
  try {
    const out = path.join(dir, "out");
    const bar = path.join(dir, "bar.yaml");
    fs.writeFileSync(bar, otherLab());
    assert.is(runCli([FOO, bar, "-o", out, "-q"]).status, 0);
    const before = readTree(out);
    // chattr needs root and a file system that supports it; without them there is nothing to test.
    if (spawnSync("chattr", ["+i", path.join(out, "foo")]).status !== 0) return;
    immutable.push(path.join(out, "foo"));
    const changed = path.join(dir, "foo.yaml");
    fs.writeFileSync(
      changed,
      fs.readFileSync(FOO, "utf8").replace("t3.medium", "t3.large"),
    );
    fs.writeFileSync(bar, otherLab().replace("t3.medium", "t3.large"));
    // bar sorts first: it is swapped in, then foo's swap fails and bar's is undone.
    assertRefused(
      runCli([bar, changed, "-o", out]),
      /cannot move .*foo: operation not permitted/,
    );
    assert.equal(readTree(out), before, "no lab changed");
    assert.equal(fs.readdirSync(out).sort(), ["bar", "foo"]);
    spawnSync("chattr", ["-i", path.join(out, "foo")]);
    immutable.pop();

    const kept = path.join(out, "foo", "kubernetes", "foo-trigger.yaml");
    spawnSync("chattr", ["+i", kept]);
    immutable.push(
      path.join(out, ".foo.gen-lab-old", "kubernetes", "foo-trigger.yaml"),
    );
    const w = runCli([changed, "-o", out, "-q"]);
    assert.is(w.status, 0, w.stderr);
    assert.match(
      w.stderr,
      /warning: foo was written, but cannot remove .*\.foo\.gen-lab-old.*foo-trigger\.yaml/,
    );
    assert.match(
      fs.readFileSync(
        path.join(out, "foo", "terraform", "foo.tf.json"),
        "utf8",
      ),
      /t3\.large/,
    );
  } finally {
    for (const f of immutable) spawnSync("chattr", ["-i", f]);
    cleanup();
  }
});

test("-- ends the options; an empty lab path is named as such", () => {
  const { dir, cleanup } = tempDir();
  try {
    const dashed = path.join(dir, "-foo.yaml");
    fs.copyFileSync(FOO, dashed);
    const r = runCli(["-o", path.join(dir, "out"), "-q", "--", dashed], {
      cwd: dir,
    });
    assert.is(r.status, 0, r.stderr);
    assertRefused(
      runCli(["", "-o", path.join(dir, "out2")]),
      /^"":1:1: the lab file's path is empty/m,
    );
  } finally {
    cleanup();
  }
});

/** gen-lab run as the user nobody (uid and gid 65534, no supplementary groups). */
function asNobody(args: readonly string[]) {
  return spawnSync(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      path.join(ROOT, "bin", "gen-lab.js"),
      ...args,
    ],
    { encoding: "utf8" },
  );
}

test("as an ordinary user: an up-to-date tree needs no write access; an unreadable directory of yours stops the write", () => {
  const { dir, cleanup } = tempDir();
  try {
    fs.chmodSync(dir, 0o755);
    const home = path.join(dir, "home");
    fs.mkdirSync(home);
    fs.chownSync(home, 65534, 65534);
    const out = path.join(home, "out");
    const first = asNobody([FOO, "-o", out, "-q"]);
    if (first.error) return; // no setpriv
    assert.is(first.status, 0, first.stderr);
    fs.chmodSync(out, 0o555);
    const again = asNobody([FOO, "-o", out]);
    assert.is(again.status, 0, again.stderr);
    assert.match(again.stdout, /unchanged/);
    fs.chmodSync(out, 0o755);

    const mine = path.join(out, "foo", "mine");
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, "notes"), "keep\n");
    spawnSync("chown", ["-R", "65534:65534", mine]);
    fs.chmodSync(mine, 0o000);
    fs.appendFileSync(path.join(out, "foo", "README.md"), "edited\n");
    const r = asNobody([FOO, "-o", out]);
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /cannot read .*foo\/mine: permission denied/);
    fs.chmodSync(mine, 0o755);
    assert.is(fs.readFileSync(path.join(mine, "notes"), "utf8"), "keep\n");
  } finally {
    cleanup();
  }
});

test("as an ordinary user: a directory it may not enter or a file it may not read is exit 2 naming it, never taken for missing", () => {
  const { dir, cleanup } = tempDir();
  try {
    fs.chmodSync(dir, 0o755);
    // A root-only output directory.
    const rootOnly = path.join(dir, "root-only");
    fs.mkdirSync(rootOnly, { mode: 0o700 });
    for (const extra of [[], ["--check"]]) {
      const r = asNobody([FOO, "-o", rootOnly, ...extra]);
      assert.is(r.status, 2, `${extra}: ${r.stderr}`);
      assert.match(r.stderr, /cannot read .*root-only\/foo: permission denied/);
      assert.not.match(r.stderr, /internal error|\n\s+at /);
    }
    // An up-to-date tree of the user's own with one part made unreadable at a time.
    const home = path.join(dir, "home");
    fs.mkdirSync(home);
    fs.chownSync(home, 65534, 65534);
    const out = path.join(home, "out");
    assert.is(asNobody([FOO, "-o", out, "-q"]).status, 0);
    for (const part of [
      "foo/README.md",
      "foo/.gen-lab-manifest.json",
      "foo/runners",
    ]) {
      const p = path.join(out, part);
      const mode = fs.statSync(p).mode & 0o777;
      fs.chmodSync(p, 0o000);
      try {
        const r = asNobody([FOO, "-o", out, "--check"]);
        assert.is(r.status, 2, `${part}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /cannot read .*: permission denied \(EACCES\)/);
        assert.not.match(r.stdout, /added/, part);
      } finally {
        fs.chmodSync(p, mode);
      }
    }
    assert.is(asNobody([FOO, "-o", out, "--check"]).status, 0);
  } finally {
    cleanup();
  }
});

test("a reader that goes away or a full disk behind stdout/stderr keeps the run's exit code, without a stack trace", () => {
  const { dir, cleanup } = tempDir();
  const bin = path.join(ROOT, "bin", "gen-lab.js");
  // Each line: a shell pipeline, then the exit code gen-lab must give in it.
  const sh = (script: string) =>
    spawnSync("bash", ["-c", script, "bash", process.execPath, bin, FOO], {
      cwd: dir,
      encoding: "utf8",
    });
  try {
    fs.writeFileSync(path.join(dir, "bad.yaml"), "version: 2\n");
    for (const [script, code] of [
      ['"$1" "$2" "$3" -o fresh | true; exit "${PIPESTATUS[0]}"', 0],
      ['"$1" "$2" "$3" -o fresh --check | true; exit "${PIPESTATUS[0]}"', 0],
      ['"$1" "$2" "$3" -o other >/dev/full', 0],
      ['"$1" "$2" bad.yaml -o fresh 2>/dev/full', 2],
      ['"$1" "$2" bad.yaml -o fresh 2>&1 | true; exit "${PIPESTATUS[0]}"', 2],
      ['"$1" "$2" --help | true; exit "${PIPESTATUS[0]}"', 0],
      [
        'echo edited >>fresh/foo/README.md; "$1" "$2" "$3" -o fresh --check | head -c 1 >/dev/null; exit "${PIPESTATUS[0]}"',
        1,
      ],
    ] as const) {
      const r = sh(script);
      assert.is(r.status, code, `${script}\n${r.stderr}`);
      assert.not.match(r.stderr, /Unhandled|EPIPE|\n\s+at /, script);
    }
  } finally {
    cleanup();
  }
});

test("a socket where gen-lab writes a file is replaced, and --check reports it changed", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    assert.is(runCli([FOO, "-o", out, "-q"]).status, 0);
    const readme = path.join(out, "foo", "README.md");
    fs.rmSync(readme);
    const bind = spawnSync("python3", [
      "-c",
      "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      readme,
    ]);
    assert.is(bind.status, 0, String(bind.stderr));
    assert.ok(fs.lstatSync(readme).isSocket());
    const check = runCli([FOO, "-o", out, "--check"]);
    assert.is(check.status, 1, check.stderr);
    const write = runCli([FOO, "-o", out, "-q"]);
    assert.is(write.status, 0, write.stderr);
    assert.ok(fs.lstatSync(readme).isFile());
  } finally {
    cleanup();
  }
});

test("a working directory that was removed is a usage error", () => {
  const { dir, cleanup } = tempDir();
  try {
    const gone = path.join(dir, "gone");
    fs.mkdirSync(gone);
    const r = spawnSync(
      "sh",
      [
        "-c",
        `cd "$1" && rmdir "$1" && exec "$2" "$3" "$4" -o out`,
        "sh",
        gone,
        process.execPath,
        path.join(ROOT, "bin", "gen-lab.js"),
        FOO,
      ],
      { encoding: "utf8" },
    );
    assertRefused(r, /the current directory no longer exists/);
  } finally {
    cleanup();
  }
});

test.run();
