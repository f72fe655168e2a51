/**
 * Hostile strings in every lab field that reaches the dispatcher script or the keyfiles, and
 * in the lab file's name (it is printed in every generated header): each is rejected by
 * validation, or it is quoted, so that the generated script parses (bash -n) and running it
 * for real, against a recording `iptables` stub, creates no file and passes values to
 * iptables verbatim, one argument each.
 *
 * The scripts run inside `unshare -n` (a fresh network namespace: the script's write to
 * /proc/sys/net/ipv4/ip_forward and any iptables call stay there) with PATH stubs for
 * iptables, getent, logger and sleep, in an empty working directory.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parse as parseYaml, stringify } from "yaml";
import { checkLabs, generate, type GeneratedFile } from "../src/index.js";
import { buildLab } from "../scripts/synthetic-labs.mjs";
import { have, runCli, tempDir } from "./helpers.js";
import { parseKeyfile } from "./support/consumers.js";

const MARK = "/tmp/gen-lab-pwned";
/** Shell metacharacters, quotes, whitespace, globs and unicode; the relative `pwned` lands in the working directory. */
const PAYLOADS: readonly string[] = [
  `$(touch ${MARK})`,
  `\`touch ${MARK}\``,
  `x;touch ${MARK}`,
  `x';touch ${MARK};'`,
  `x";touch ${MARK};"`,
  `x\ntouch ${MARK}`,
  "x\ntouch pwned",
  "$(touch pwned)",
  "*",
  "a b",
  "-j ACCEPT",
  "ünï",
  "\u202e",
  "${IFS}x",
];

type Lab = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const BASES: Record<string, () => Lab> = {
  "static-key": () =>
    buildLab({
      name: "safe",
      zones: 2,
      vpn: "openvpn-static-key",
      cipher: "AES-256-CBC",
      egress: true,
    }),
  tls: () =>
    buildLab({ name: "safe", zones: 1, vpn: "openvpn-tls", egress: true }),
  wireguard: () => buildLab({ name: "safe", zones: 1, vpn: "wireguard" }),
  ipsec: () => buildLab({ name: "safe", zones: 1, vpn: "ipsec" }),
};

/** Every string field of the format that ends up in a keyfile, the dispatcher or a README command, and where to set it. */
const FIELDS: readonly [string, string, (lab: Lab, v: string) => void][] = [
  ["name", "static-key", (l, v) => (l.name = v)],
  ["environment", "static-key", (l, v) => (l.environment = v)],
  ["prefix", "static-key", (l, v) => (l.prefix = v)],
  ["intranet.cidrs[0]", "static-key", (l, v) => (l.intranet.cidrs[0] = v)],
  ["intranet.domains[0]", "static-key", (l, v) => (l.intranet.domains[0] = v)],
  ["intranet.domains[1]", "static-key", (l, v) => l.intranet.domains.push(v)],
  [
    "intranet.nameservers[0]",
    "static-key",
    (l, v) => (l.intranet.nameservers[0] = v),
  ],
  ["vpn.remote", "static-key", (l, v) => (l.vpn.remote = v)],
  ["vpn.cipher", "static-key", (l, v) => (l.vpn.cipher = v)],
  ["vpn.protocol", "static-key", (l, v) => (l.vpn.protocol = v)],
  ["vpn.ca", "tls", (l, v) => (l.vpn.ca = v)],
  ["vpn.public_key", "wireguard", (l, v) => (l.vpn.public_key = v)],
  ["vpn.ike", "ipsec", (l, v) => (l.vpn.ike = v)],
  [
    "aws.zones key",
    "static-key",
    (l, v) => {
      const [zone, spec] = Object.entries(l.aws.zones)[0]!;
      delete l.aws.zones[zone];
      l.aws.zones[v] = spec;
      l.runners[0].zone = v;
    },
  ],
  [
    "aws.zones.*.worker_subnet",
    "static-key",
    (l, v) => ((Object.values(l.aws.zones)[0] as Lab).worker_subnet = v),
  ],
  ["runners[0].name", "static-key", (l, v) => (l.runners[0].name = v)],
  ["runners[0].zone", "static-key", (l, v) => (l.runners[0].zone = v)],
  ["runners[0].address", "static-key", (l, v) => (l.runners[0].address = v)],
  [
    "runners[0].interface",
    "static-key",
    (l, v) => (l.runners[0].interface = v),
  ],
  [
    "runners[0].vpn.static_key",
    "static-key",
    (l, v) => (l.runners[0].vpn.static_key = v),
  ],
  [
    "runners[0].vpn.local_ip",
    "static-key",
    (l, v) => (l.runners[0].vpn.local_ip = v),
  ],
  ["runners[0].vpn.cert", "tls", (l, v) => (l.runners[0].vpn.cert = v)],
  ["runners[0].vpn.key", "tls", (l, v) => (l.runners[0].vpn.key = v)],
  [
    "runners[0].vpn.private_key_file",
    "wireguard",
    (l, v) => (l.runners[0].vpn.private_key_file = v),
  ],
  [
    "runners[0].vpn.address",
    "wireguard",
    (l, v) => (l.runners[0].vpn.address = v),
  ],
  [
    "runners[0].vpn.psk_file",
    "ipsec",
    (l, v) => (l.runners[0].vpn.psk_file = v),
  ],
  ["egress[0].to (host)", "static-key", (l, v) => (l.egress[0].to = v)],
  [
    "egress[0].to (host under the domain)",
    "static-key",
    (l, v) => (l.egress[0].to = `${v}.${l.intranet.domains[0]}`),
  ],
  ["egress[1].to (cidr)", "static-key", (l, v) => (l.egress[1].to = v)],
  ["egress[0].protocol", "static-key", (l, v) => (l.egress[0].protocol = v)],
  // Printed in the lab README's shell commands (quoted there too).
  [
    "beaker.url (host)",
    "static-key",
    (l, v) => (l.beaker.url = `https://${v}.${l.intranet.domains[0]}`),
  ],
  ["beaker.url (path)", "static-key", (l, v) => (l.beaker.url += `/${v}`)],
  [
    "pipeline.gitlab_url (host)",
    "static-key",
    (l, v) => (l.pipeline.gitlab_url = `https://${v}`),
  ],
  [
    "pipeline.gitlab_url (path)",
    "static-key",
    (l, v) => (l.pipeline.gitlab_url = `https://gitlab.example.com/${v}`),
  ],
  ["pipeline.project", "static-key", (l, v) => (l.pipeline.project = v)],
  [
    "pipeline.runner_tags[0]",
    "static-key",
    (l, v) => (l.pipeline.runner_tags = [v]),
  ],
  [
    "pipeline.triggers[0].git_url",
    "static-key",
    (l, v) => (l.pipeline.triggers[0].git_url = `https://gitlab.com/${v}.git`),
  ],
];

// ---------------------------------------------------------------------- the harness

const { dir: root, cleanup } = tempDir("gen-lab-shell-");
const STUBS = path.join(root, "stubs");

/**
 * iptables records each call as one line: its arguments, each base64-encoded (so newlines,
 * spaces and NULs in an argument cannot blur the boundaries), separated by spaces. It fails
 * -C, -D and (unless STUB_CHAINS_EXIST=1) -L, as on a host without this lab's rules.
 */
const IPTABLES_STUB = `#!/bin/bash
line=""
for arg in "$@"; do line+="$(printf '%s' "$arg" | base64 -w0) "; done
printf '%s\\n' "$line" >>"$STUB_LOG"
for arg in "$@"; do
  case "$arg" in
    -C|-D) exit 1 ;;
    -L) [[ "\${STUB_CHAINS_EXIST:-0}" == 1 ]] && exit 0 || exit 1 ;;
  esac
done
exit 0
`;

test.before(() => {
  fs.mkdirSync(STUBS);
  const stub = (name: string, text: string) =>
    fs.writeFileSync(path.join(STUBS, name), text, { mode: 0o755 });
  stub("iptables", IPTABLES_STUB);
  stub("getent", "#!/bin/bash\nprintf '10.20.5.7       STREAM %s\\n' \"$2\"\n");
  stub("logger", "#!/bin/bash\nexit 0\n");
  stub("sleep", "#!/bin/bash\nexit 0\n");
  fs.rmSync(MARK, { force: true });
});

test.after(() => {
  cleanup();
  fs.rmSync(MARK, { force: true });
});

interface ScriptRun {
  status: number | null;
  stderr: string;
  /** argv of every iptables call. */
  calls: string[][];
  /** Files the run left in its (empty) working directory. */
  stray: string[];
}

/** Run a dispatcher script for real, in a fresh network namespace, against the stubs. */
function runDispatcher(
  script: string,
  args: string[],
  env: Record<string, string>,
): ScriptRun {
  const work = fs.mkdtempSync(path.join(root, "run-"));
  const cwd = path.join(work, "cwd");
  fs.mkdirSync(cwd);
  const file = path.join(work, "dispatcher");
  const log = path.join(work, "iptables.log");
  fs.writeFileSync(file, script, { mode: 0o755 });
  fs.writeFileSync(log, "");
  const r = spawnSync(
    "unshare",
    [
      "-n",
      "--",
      "env",
      "-i",
      ...Object.entries({
        PATH: `${STUBS}:/usr/sbin:/usr/bin:/sbin:/bin`,
        STUB_LOG: log,
        ...env,
      }).map(([k, v]) => `${k}=${v}`),
      "bash",
      file,
      ...args,
    ],
    { cwd, encoding: "utf8", timeout: 60_000 },
  );
  const calls = fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) =>
      l
        .trim()
        .split(" ")
        .filter((w) => w !== "")
        .map((w) => Buffer.from(w, "base64").toString("utf8")),
    );
  return {
    status: r.status,
    stderr: r.stderr,
    calls,
    stray: fs.readdirSync(cwd),
  };
}

function bashSyntax(script: string): string {
  const file = path.join(fs.mkdtempSync(path.join(root, "syntax-")), "script");
  fs.writeFileSync(file, script);
  const r = spawnSync("bash", ["-n", file], { encoding: "utf8" });
  return r.status === 0 ? "" : r.stderr || "bash -n failed";
}

const dispatchers = (files: readonly GeneratedFile[]) =>
  files.filter((f) => f.path.includes("/dispatcher.d/"));
const keyfiles = (files: readonly GeneratedFile[]) =>
  files.filter((f) => f.path.endsWith(".nmconnection"));
const uuidOf = (files: readonly GeneratedFile[], runner: string) =>
  /^uuid=(.+)$/m.exec(
    files.find(
      (f) =>
        f.path.includes(`/runners/${runner}/`) &&
        f.path.endsWith("-vpn.nmconnection"),
    )!.contents,
  )![1]!;

/**
 * Everything an accepted (or valid) generated tree must satisfy: each dispatcher parses,
 * runs vpn-up and vpn-down without creating files, and hands `verbatim` values to iptables as
 * whole arguments; each keyfile is only sections and key=value lines.
 */
function assertSafe(
  files: readonly GeneratedFile[],
  what: string,
  verbatim: readonly string[] = [],
): void {
  for (const d of dispatchers(files)) {
    assert.is(bashSyntax(d.contents), "", `${what}: bash -n ${d.path}`);
    const runner = /\/runners\/([^/]+)\//.exec(d.path)![1]!;
    const uuid = uuidOf(files, runner);
    for (const [event, env] of [
      ["vpn-up", {}],
      ["vpn-down", { STUB_CHAINS_EXIST: "1" }],
    ] as const) {
      const r = runDispatcher(d.contents, ["tun0", event], {
        CONNECTION_UUID: uuid,
        // What NetworkManager passes with a plugin VPN's address (IPsec NATs to it).
        VPN_IP4_ADDRESS_0: "192.0.2.77/32 0.0.0.0",
        ...env,
      });
      assert.is(r.status, 0, `${what}: ${event} exit status; ${r.stderr}`);
      assert.equal(r.stray, [], `${what}: ${event} created files`);
      assert.not.ok(fs.existsSync(MARK), `${what}: ${event} ran ${MARK}`);
      assert.ok(r.calls.length > 0, `${what}: ${event} called iptables`);
      for (const call of r.calls)
        assert.is(call.slice(0, 2).join(" "), "-w 10", `${what}: ${call}`);
      if (event === "vpn-up") {
        const args = new Set(r.calls.flat());
        for (const v of verbatim)
          assert.ok(
            args.has(v),
            `${what}: ${JSON.stringify(v)} reaches iptables as one argument`,
          );
      }
    }
  }
  for (const k of keyfiles(files)) {
    try {
      parseKeyfile(k.contents);
    } catch (e) {
      assert.unreachable(`${what}: ${k.path}: ${(e as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------------- the tests

test("the tools are here: unshare (as root), bash", () => {
  assert.ok(have("unshare") && have("bash"));
  const r = spawnSync("unshare", ["-n", "true"]);
  assert.is(r.status, 0, "unshare -n needs root (CAP_SYS_ADMIN)");
});

test("valid labs: the dispatcher runs against the stub and passes every value as one argument", () => {
  for (const [kind, base] of Object.entries(BASES)) {
    const lab = base();
    const result = checkLabs([{ file: "safe.yaml", text: stringify(lab) }]);
    assert.ok(result.labs, `${kind} base lab is valid`);
    const files = generate(result.labs!);
    const zones = Object.values(lab.aws.zones) as { worker_subnet: string }[];
    const verbatim = [
      "GENLAB-FWD-safe",
      "GENLAB-NAT-safe",
      "tun0",
      ...zones.map((z) => z.worker_subnet),
      ...(lab.egress
        ? [lab.egress[1].to, "80,443", "22", "10.20.5.7"]
        : lab.intranet.cidrs),
    ];
    assertSafe(files, kind, verbatim);
  }
});

/** The first runner's dispatcher of a base lab, and that runner's VPN uuid. */
function firstDispatcher(kind: string): { d: GeneratedFile; uuid: string } {
  const result = checkLabs([
    { file: "safe.yaml", text: stringify(BASES[kind]!()) },
  ]);
  const files = generate(result.labs!);
  const d = dispatchers(files)[0]!;
  return { d, uuid: uuidOf(files, /\/runners\/([^/]+)\//.exec(d.path)![1]!) };
}

test("hostile interface names from NetworkManager are refused before any iptables call", () => {
  const { d, uuid } = firstDispatcher("static-key");
  for (const iface of PAYLOADS) {
    const r = runDispatcher(d.contents, ["tun0", "vpn-up"], {
      CONNECTION_UUID: uuid,
      VPN_IP_IFACE: iface,
    });
    assert.is(r.status, 1, `VPN_IP_IFACE=${JSON.stringify(iface)}`);
    assert.equal(r.calls, [], "no iptables call");
    assert.equal(r.stray, []);
    assert.not.ok(fs.existsSync(MARK));
  }
  // Another connection's events are ignored entirely.
  const other = runDispatcher(d.contents, ["tun0", "vpn-up"], {
    CONNECTION_UUID: "00000000-0000-0000-0000-000000000000",
  });
  assert.is(other.status, 0);
  assert.equal(other.calls, []);
});

test("IPsec: NAT goes to the tunnel address NetworkManager passes; a missing or hostile one is refused", () => {
  const { d, uuid } = firstDispatcher("ipsec");
  const up = (env: Record<string, string>) =>
    runDispatcher(d.contents, ["eth0", "vpn-up"], {
      CONNECTION_UUID: uuid,
      VPN_IP_IFACE: "eth0",
      ...env,
    });
  const ok = up({ VPN_IP4_ADDRESS_0: "192.0.2.77/32 0.0.0.0" });
  assert.is(ok.status, 0, ok.stderr);
  const nat = ok.calls.filter(
    (c) =>
      c.includes("POSTROUTING") === false &&
      c.includes("nat") &&
      c.includes("-A"),
  );
  assert.ok(nat.length > 0, "NAT rules");
  for (const call of nat) {
    assert.ok(call.includes("SNAT"), call.join(" "));
    assert.is(call[call.indexOf("--to-source") + 1], "192.0.2.77");
    assert.not.ok(call.includes("MASQUERADE"));
  }
  for (const address of [undefined, "", "eth0", ...PAYLOADS]) {
    const r = up(address === undefined ? {} : { VPN_IP4_ADDRESS_0: address });
    assert.is(r.status, 1, `VPN_IP4_ADDRESS_0=${JSON.stringify(address)}`);
    assert.equal(r.calls, [], "no iptables call");
    assert.equal(r.stray, []);
    assert.not.ok(fs.existsSync(MARK));
  }
});

test(`hostile values in ${FIELDS.length} fields: rejected, or quoted and harmless`, () => {
  const accepted: string[] = [];
  for (const [field, kind, set] of FIELDS) {
    for (const payload of PAYLOADS) {
      const lab = BASES[kind]!();
      set(lab, payload);
      const what = `${field} = ${JSON.stringify(payload)}`;
      let result;
      try {
        result = checkLabs([{ file: "safe.yaml", text: stringify(lab) }]);
      } catch (e) {
        assert.unreachable(`${what}: checkLabs threw ${(e as Error).message}`);
        return;
      }
      if (!result.labs) {
        assert.ok(
          result.diagnostics.some((d) => d.severity === "error" && d.line >= 1),
          what,
        );
        continue;
      }
      accepted.push(what);
      assertSafe(generate(result.labs), what);
    }
  }
  // Every one of these fields has a pattern of plain characters today; a field that starts
  // accepting such values must still pass assertSafe above (and then this list grows).
  assert.equal(accepted, [], "hostile values accepted (each was checked safe)");
});

test("a sample through the CLI: exit 2, nothing written", () => {
  const { dir, cleanup: done } = tempDir();
  try {
    FIELDS.filter((_, i) => i % 4 === 0).forEach(([field, kind, set], i) => {
      const lab = BASES[kind]!();
      set(lab, PAYLOADS[i % PAYLOADS.length]!);
      const file = path.join(dir, `lab${i}.yaml`);
      fs.writeFileSync(file, stringify(lab));
      const out = path.join(dir, `out${i}`);
      const r = runCli([file, "-o", out]);
      assert.is(r.status, 2, `${field}: ${r.stderr}`);
      assert.not.ok(fs.existsSync(out), `${field}: nothing written`);
      assert.not.ok(fs.existsSync(MARK));
    });
  } finally {
    done();
  }
});

test("hostile lab file names (printed in every header): rejected, or harmless in scripts, keyfiles and cloud-config", () => {
  const { dir, cleanup: done } = tempDir();
  try {
    const text = stringify(BASES["static-key"]!());
    const names = PAYLOADS.filter((p) => !p.includes("/")).map(
      (p) => `lab${p}.yaml`,
    );
    names.push(
      "lab\n[connection]\nid=evil\n#.yaml",
      "lab\nruncmd: [[touch, pwned]]\n#.yaml",
    );
    names.forEach((name, i) => {
      const labDir = path.join(dir, `d${i}`);
      fs.mkdirSync(labDir);
      const file = path.join(labDir, name);
      fs.writeFileSync(file, text);
      const out = path.join(dir, `out${i}`);
      const r = runCli([file, "-o", out, "-q"]);
      const what = `lab file ${JSON.stringify(name)}`;
      if (r.status === 2) {
        assert.not.ok(fs.existsSync(out), `${what}: nothing written`);
        return;
      }
      assert.is(r.status, 0, `${what}: ${r.stderr}`);
      const files: GeneratedFile[] = [];
      const walk = (rel: string) => {
        for (const e of fs.readdirSync(path.join(out, rel), {
          withFileTypes: true,
        })) {
          const p = rel === "" ? e.name : `${rel}/${e.name}`;
          if (e.isDirectory()) walk(p);
          else
            files.push({
              path: p,
              mode: 0,
              contents: fs.readFileSync(path.join(out, p), "utf8"),
            });
        }
      };
      walk("");
      assertSafe(files, what);
      for (const f of files.filter((f) =>
        f.path.endsWith("worker-user-data.yaml"),
      )) {
        assert.ok(
          f.contents.startsWith("#cloud-config\n"),
          `${what}: ${f.path}`,
        );
        assert.equal(
          Object.keys(parseYaml(f.contents) as object).sort(),
          ["runcmd", "write_files"],
          `${what}: ${f.path} holds only what gen-lab wrote`,
        );
      }
      for (const k of keyfiles(files))
        assert.equal(
          [...parseKeyfile(k.contents).keys()].filter((s) => s === "connection")
            .length,
          1,
          `${what}: ${k.path}`,
        );
    });
  } finally {
    done();
  }
});

test.run();
