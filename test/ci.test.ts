/**
 * The habits of the tools users already know (issue 23): `gen-lab init`, the CI report formats
 * (GitLab Code Quality, GitHub workflow commands, JSON), colour on terminals only, `--quiet`
 * and the one-line summary. Every case runs the built CLI as a user would.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BIN, ROOT, runCli, skipped, tempDir } from "./helpers.js";

const FOO = fs.readFileSync(path.join(ROOT, "labs/foo.yaml"), "utf8");
const ESC = "\u001b[";

/** The example lab in a temp dir, with edits: a warning (no cipher) and an error (a bad address). */
function withLabs(
  fn: (dir: string, good: string, bad: string) => void,
  badEdit = (t: string) =>
    t.replace("address: 172.31.200.10", "address: 172.31.999.10"),
): void {
  const { dir, cleanup } = tempDir();
  try {
    const good = path.join(dir, "foo.yaml");
    const bad = path.join(dir, "bad", "foo.yaml");
    fs.mkdirSync(path.dirname(bad));
    fs.writeFileSync(good, FOO);
    fs.writeFileSync(bad, badEdit(FOO));
    fn(dir, good, bad);
  } finally {
    cleanup();
  }
}

// ---------------------------------------------------------------- GitLab Code Quality

/**
 * GitLab's "Code Quality report format" (docs.gitlab.com/ci/testing/code_quality): one JSON
 * array; each finding has description, check_name, fingerprint (unique per finding), severity
 * (info, minor, major, critical or blocker) and location.path (relative to the repository) with
 * location.lines.begin (an integer); no byte-order mark.
 */
function assertCodeQuality(text: string): Record<string, any>[] {
  assert.not.ok(text.startsWith("\uFEFF"), "no byte-order mark");
  const report = JSON.parse(text) as Record<string, any>[];
  assert.ok(Array.isArray(report), "a JSON array");
  for (const f of report) {
    for (const key of ["description", "check_name", "fingerprint", "severity"])
      assert.type(f[key], "string", `${key} is a string: ${JSON.stringify(f)}`);
    assert.ok(f.description.length > 0 && f.check_name.length > 0);
    assert.ok(
      ["info", "minor", "major", "critical", "blocker"].includes(f.severity),
      f.severity,
    );
    assert.type(f.location?.path, "string");
    assert.not.ok(
      path.isAbsolute(f.location.path),
      "a path relative to the repository",
    );
    assert.ok(
      Number.isInteger(f.location.lines?.begin) && f.location.lines.begin >= 1,
    );
  }
  const prints = report.map((f) => f.fingerprint);
  assert.is(new Set(prints).size, prints.length, "one fingerprint per finding");
  return report;
}

test("--format gitlab: a Code Quality report of errors and warnings, on stdout, with stable fingerprints", () => {
  withLabs((dir, good, bad) => {
    const noCipher = path.join(dir, "bad", "warn.yaml");
    fs.writeFileSync(
      noCipher,
      FOO.replace(/^name: foo /m, "name: warn ")
        .replace(/^ {2}cipher: .*\n/m, "")
        .replace(/cki-foo-pipelines/, "cki-warn-pipelines")
        .replace(/runner_tags: \[foo\]/, "runner_tags: [warn]")
        .replace(/\/etc\/gen-lab\/foo\//g, "/etc/gen-lab/warn/"),
    );
    const rel = (f: string) => path.relative(dir, f);
    const run = () =>
      runCli([rel(bad), rel(noCipher), "-o", "out", "--format", "gitlab"], {
        cwd: dir,
      });
    const r = run();
    assert.is(r.status, 2, r.stderr);
    const report = assertCodeQuality(r.stdout);
    const error = report.find((f) => f.severity === "critical");
    assert.ok(error, r.stdout);
    assert.is(error!.location.path, "bad/foo.yaml");
    assert.is(
      error!.location.lines.begin,
      FOO.split("\n").findIndex((l) => l.includes("address: 172.31.200.10")) +
        1,
    );
    assert.match(error!.description, /172\.31\.999\.10/);
    assert.match(error!.check_name, /^gen-lab\/runners\[\]\.address$/);
    const warning = report.find((f) => f.location.path === "bad/warn.yaml");
    assert.ok(warning && warning.severity === "minor", r.stdout);
    assert.match(r.stderr, /nothing written/, "the last word goes to stderr");
    assert.not.ok(fs.existsSync(path.join(dir, "out")));

    // The same findings next run, and after lines above them moved.
    assert.equal(assertCodeQuality(run().stdout), report);
    fs.writeFileSync(
      bad,
      `# a comment that moves every line\n${fs.readFileSync(bad, "utf8")}`,
    );
    const moved = assertCodeQuality(run().stdout);
    assert.equal(
      moved.map((f) => f.fingerprint).sort(),
      report.map((f) => f.fingerprint).sort(),
      "fingerprints do not depend on line numbers",
    );
  });
});

test("--check --format gitlab: each stale output file is a finding; the diff goes to stderr", () => {
  withLabs((dir, good) => {
    assert.is(runCli(["foo.yaml", "-o", "out", "-q"], { cwd: dir }).status, 0);
    const sysctl =
      "out/foo/runners/foo-1/rootfs/etc/sysctl.d/90-gen-lab-foo.conf";
    fs.writeFileSync(path.join(dir, sysctl), "net.ipv4.ip_forward = 0\n");
    fs.rmSync(path.join(dir, "out/foo/README.md"));
    const r = runCli(
      [path.basename(good), "-o", "out", "--check", "--format", "gitlab"],
      {
        cwd: dir,
      },
    );
    assert.is(r.status, 1, r.stderr);
    // (The example lab is static-key: its warning about OpenVPN 2.7 is in the report too.)
    const report = assertCodeQuality(r.stdout).filter(
      (f) => f.check_name !== "gen-lab/vpn.auth",
    );
    assert.equal(report.map((f) => [f.location.path, f.check_name]).sort(), [
      ["out/foo/README.md", "gen-lab/file"],
      [sysctl, "gen-lab/file"],
    ]);
    assert.match(report[0]!.description, /run gen-lab foo\.yaml -o out/);
    assert.match(
      r.stderr,
      /^-net\.ipv4\.ip_forward = 0$/m,
      "the diff, on stderr",
    );
    assert.match(
      r.stderr,
      /out is stale \(1 lab\(s\): 2 to write, \d+ unchanged, 0 to remove\)/,
    );
  });
});

// ---------------------------------------------------------------- GitHub, JSON

test("--format github: workflow commands, with GitHub's escaping of %, CR, LF, ':' and ','", () => {
  withLabs(
    (dir, _good, bad) => {
      const odd = path.join(dir, "bad", "we,ird:name.yaml");
      fs.renameSync(bad, odd);
      const r = runCli(
        [path.relative(dir, odd), "-o", "out", "--format", "github"],
        {
          cwd: dir,
        },
      );
      assert.is(r.status, 2, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.ok(lines.length >= 1, r.stdout);
      for (const l of lines)
        assert.match(
          l,
          /^::(error|warning) file=[^:]*,line=\d+,col=\d+,title=[^:]*::./,
        );
      const cmd = lines.find((l) => l.includes("100%"));
      assert.ok(cmd, r.stdout);
      assert.match(
        cmd!,
        /^::error file=bad\/we%2Cird%3Aname\.yaml,line=\d+,col=\d+,title=gen-lab\/[^,:]*::/,
      );
      assert.match(cmd!, /100%25/, "a % in the message is %25");
      assert.not.match(cmd!, /100%[^2]/);
    },
    (t) => t.replace("beaker.foo.example.com", "beaker100%.foo.example.com"),
  );
});

test("--format json: every finding with file, line, column, path, message and hint", () => {
  withLabs((dir, _good, bad) => {
    const r = runCli([bad, "-o", path.join(dir, "out"), "--format", "json"]);
    assert.is(r.status, 2);
    const list = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.ok(list.length > 0);
    for (const d of list)
      assert.equal(Object.keys(d).sort(), [
        "column",
        "file",
        "hint",
        "line",
        "message",
        "path",
        "severity",
      ]);
    assert.is(list[0]!.file, bad);
    assert.is(list[0]!.path, "runners[0].address");
  });
});

// ---------------------------------------------------------------- terminal manners

/** The CLI on a terminal: util-linux's `script` gives it a pty for stdout and stderr. */
function onTerminal(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
) {
  const cmd = [process.execPath, BIN, ...args]
    .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
    .join(" ");
  return spawnSync("script", ["-qfec", cmd, "/dev/null"], {
    cwd,
    env: { ...process.env, TERM: "xterm", ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
}

test("colour: errors, warnings and the --check diff on a terminal; none with NO_COLOR or when piped", () => {
  if (spawnSync("script", ["--version"]).status !== 0)
    return skipped("needs util-linux's script for a terminal");
  withLabs((dir, good, bad) => {
    const { NO_COLOR: _, ...env } = process.env;
    const colored = onTerminal(
      [bad, "-o", "out"],
      { ...env, NO_COLOR: "" },
      dir,
    );
    assert.is(colored.status, 2, colored.stdout);
    assert.ok(
      colored.stdout.includes(`${ESC}31m${bad}:`),
      `an error in red:\n${JSON.stringify(colored.stdout)}`,
    );
    assert.is(onTerminal([good, "-o", "out", "-q"], {}, dir).status, 0);
    fs.appendFileSync(path.join(dir, "out/foo/README.md"), "mine\n");
    const diff = onTerminal(
      [good, "-o", "out", "--check"],
      { NO_COLOR: "" },
      dir,
    );
    assert.is(diff.status, 1);
    assert.match(
      diff.stdout,
      new RegExp(`\\u001b\\[31m-mine`),
      "a removed line in red",
    );
    for (const plain of [
      onTerminal([bad, "-o", "out"], { NO_COLOR: "1" }, dir),
      runCli([bad, "-o", "out"], { cwd: dir }),
    ])
      assert.not.ok(
        plain.stdout.includes(ESC) || plain.stderr.includes(ESC),
        "no colour",
      );
  });
});

test("the summary: one line per run; --quiet prints nothing on success, problems still", () => {
  withLabs((dir, good, bad) => {
    const first = runCli([good, "-o", "out"], { cwd: dir });
    assert.is(first.status, 0);
    assert.match(
      first.stdout,
      /^gen-lab: out: 1 lab\(s\): (\d+) written, 0 unchanged, 0 removed\n$/,
    );
    const again = runCli([good, "-o", "out"], { cwd: dir });
    assert.match(
      again.stdout,
      /^gen-lab: out: 1 lab\(s\): 0 written, \d+ unchanged, 0 removed\n$/,
    );
    const quiet = runCli([good, "-o", "out", "-q"], { cwd: dir });
    assert.is(quiet.stdout, "");
    assert.match(
      quiet.stderr,
      /^\S+foo\.yaml:\d+:\d+: warning: vpn\.auth: [^\n]*\n[^\n]*\n[^\n]*\n$/,
      "the example lab's one warning, and nothing else",
    );
    const failing = runCli([bad, "-o", "out2", "-q"], { cwd: dir });
    assert.is(failing.status, 2);
    assert.match(failing.stderr, /172\.31\.999\.10/);
    assert.match(failing.stderr, /1 error\(s\); nothing written\.\n$/);
  });
});

// ---------------------------------------------------------------- init

for (const vpn of ["openvpn", "wireguard", "ipsec"] as const)
  test(`init --vpn ${vpn}: a commented lab gen-lab accepts as it is, its placeholders named, never over a file`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = runCli(
        [
          "init",
          "bar",
          "--vpn",
          vpn,
          "--zones",
          "eu-west-1a,eu-west-1b,eu-west-1c",
          "-o",
          "labs",
        ],
        {
          cwd: dir,
        },
      );
      assert.is(r.status, 0, r.stderr);
      const file = path.join(dir, "labs/bar.yaml");
      const text = fs.readFileSync(file, "utf8");
      assert.match(r.stdout, /wrote labs\/bar\.yaml/);
      assert.match(
        r.stdout,
        /gen-lab labs\/bar\.yaml -o out\//,
        "the next steps",
      );
      const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(
        text.split("\n")[0]!,
      );
      assert.ok(modeline, text.split("\n")[0]);
      assert.is(
        path.resolve(path.dirname(file), modeline![1]!),
        path.join(ROOT, "schema/lab.schema.json"),
        "the modeline names this gen-lab's schema",
      );
      assert.ok(fs.existsSync(path.join(ROOT, "schema/lab.schema.json")));
      assert.ok(
        (text.match(/# placeholder: /g) ?? []).length >= 8,
        "placeholders are named",
      );
      assert.match(text, new RegExp(`^ {2}type: ${vpn}$`, "m"));
      assert.equal(
        [...text.matchAll(/^ {4}(eu-west-1[abc]):/gm)].map((m) => m[1]),
        ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
      );
      const gen = runCli(["labs/bar.yaml", "-o", "out"], { cwd: dir });
      assert.is(gen.status, 0, gen.stderr);
      assert.is(gen.stderr, "", "not even a warning");
      assert.ok(fs.existsSync(path.join(dir, "out/bar/README.md")));

      fs.appendFileSync(file, "# my edit\n");
      const again = runCli(["init", "bar", "-o", "labs"], { cwd: dir });
      assert.is(again.status, 2);
      assert.match(
        again.stderr,
        /labs\/bar\.yaml exists; init never overwrites/,
      );
      assert.match(
        fs.readFileSync(file, "utf8"),
        /# my edit\n$/,
        "the file is untouched",
      );
    } finally {
      cleanup();
    }
  });

test("init refuses a name or zones gen-lab would refuse, and writes nothing", () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const [args, message] of [
      [["init", "Bar"], /^gen-lab init: name: must be a lab name/],
      [
        ["init", "bar", "--zones", "us-east-1a,eu-west-1b"],
        /zone eu-west-1b is not in region us-east-1/,
      ],
      [["init", "bar", "--zones", ","], /give availability zones/],
      [["init", "bar", "--vpn", "pptp"], /Invalid values|Choices/],
    ] as const) {
      const r = runCli(args, { cwd: dir });
      assert.is(r.status, 2, args.join(" "));
      assert.match(r.stderr, message);
      assert.not.ok(fs.existsSync(path.join(dir, "labs")), "nothing written");
    }
  } finally {
    cleanup();
  }
});

test.run();
