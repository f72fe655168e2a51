/**
 * Properties over generated labs (fast-check):
 * - every valid lab (1-4 zones, every tunnel kind, random CIDRs, domains, ports, interface
 *   names, with or without an allow-list) generates files that NetworkManager, bash and
 *   shellcheck accept, byte-identical on a second run;
 * - every broken lab (wrong types, removed required keys, overlaps, huge numbers, deep
 *   nesting, shell metacharacters and unicode in constrained fields, damaged text) ends in
 *   located diagnostics, never an exception; through the CLI: exit 2, no stack trace,
 *   nothing written.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parse, parseAllDocuments, stringify } from "yaml";
import { checkLabs, generate, type Diagnostic } from "../src/index.js";
import { hostBitsZero, networkOf, parseNet } from "../src/net.js";
import { paths } from "../src/render/paths.js";
import { TRIGGER_KEYS } from "../src/validate/lab.js";
import { buildLab, VPN_KINDS } from "../scripts/synthetic-labs.mjs";
import { runCli, tempDir } from "./helpers.js";
import {
  cloudInitProblems,
  nmcliProblems,
  pyyamlMismatches,
  shellProblems,
  type PyyamlRoundTrip,
} from "./support/consumers.js";

// A fixed seed keeps CI reproducible: a red run can be replayed exactly. FC_SEED explores
// other corners (e.g. FC_SEED=$RANDOM npm run test:unit); add what it finds as a fixed case.
fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261123) });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

/** Parameters of buildLab() that keep a lab valid (see scripts/synthetic-labs.mjs). */
const labParams = fc.record({
  name: fc.stringMatching(/^[a-z][a-z0-9]{0,15}$/),
  seed: fc.nat(1_000_000),
  vpcOctet: fc.integer({ min: 0, max: 9 }),
  zones: fc.integer({ min: 1, max: 4 }),
  runnerHost: fc.integer({ min: 4, max: 14 }),
  intranetOctet: fc.integer({ min: 20, max: 240 }),
  intranetCount: fc.integer({ min: 1, max: 3 }),
  domainCount: fc.integer({ min: 1, max: 3 }),
  tld: fc.constantFrom("example.org", "lab.example.net", "internal", "co.uk"),
  vpn: fc.constantFrom(...VPN_KINDS),
  protocol: fc.constantFrom("udp", "tcp"),
  // CBC ciphers: OpenVPN takes them with a static key and with TLS alike.
  cipher: fc.option(
    fc.constantFrom("AES-256-CBC", "aes-128-cbc", "CAMELLIA-256-CBC"),
    { nil: undefined },
  ),
  keyDirection: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
  port: fc.option(fc.integer({ min: 1, max: 65_000 }), { nil: undefined }),
  interfaceName: fc.option(fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/), {
    nil: undefined,
  }),
  egress: fc.boolean(),
  nameserverHost: fc.integer({ min: 1, max: 254 }),
});

const validLab = labParams.map((p) => buildLab(p) as Json);
const FILE = "labs/prop.yaml";

function check(text: string) {
  return checkLabs([{ file: FILE, text }]);
}

function errorsOf(list: readonly Diagnostic[]): Diagnostic[] {
  return list.filter((d) => d.severity === "error");
}

// ---------------------------------------------------------------------- valid labs

test("network arithmetic agrees with ipaddr.js on every prefix length (5000 CIDRs)", () => {
  const num = (a: ipaddr.IPv4) =>
    a.toByteArray().reduce((n, byte) => n * 256 + byte, 0);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 255 }), {
        minLength: 4,
        maxLength: 4,
      }),
      fc.integer({ min: 0, max: 32 }),
      (octets, prefix) => {
        const cidr = `${octets.join(".")}/${prefix}`;
        const net = parseNet(cidr);
        const first = ipaddr.IPv4.networkAddressFromCIDR(cidr);
        const last = ipaddr.IPv4.broadcastAddressFromCIDR(cidr);
        assert.is(net.first, num(first), `${cidr}: first`);
        assert.is(net.last, num(last), `${cidr}: last`);
        assert.is(net.prefix, prefix);
        assert.is(networkOf(cidr), `${first.toString()}/${prefix}`);
        assert.is(
          hostBitsZero(cidr),
          first.toString() === octets.join("."),
          `${cidr}: host bits`,
        );
      },
    ),
    { numRuns: 5000 },
  );
});

test("valid labs: accepted, deterministic, byte-identical on a second run (200 labs, in-process)", () => {
  fc.assert(
    fc.property(validLab, (lab) => {
      const text = stringify(lab);
      const first = check(text);
      assert.equal(errorsOf(first.diagnostics), [], text);
      const again = check(text);
      const a = generate(first.labs!);
      const b = generate(again.labs!);
      assert.equal(b, a, "a second run gives the same files");
      assert.ok(a.length > 0);
    }),
    { numRuns: 200 },
  );
});

test("valid labs: keyfiles survive nmcli --offline, scripts pass bash -n and shellcheck, cloud-init takes the worker user data (20 labs)", () => {
  fc.assert(
    fc.property(validLab, (lab) => {
      const result = check(stringify(lab));
      assert.ok(result.labs, "valid");
      const files = generate(result.labs!);
      // One runner's files per lab: the others differ only in addresses and ports, and this
      // keeps the number of nmcli and shellcheck processes bounded.
      const runner = (lab as { runners: { name: string }[] }).runners[0]!.name;
      const mine = files.filter((f) => f.path.includes(`/runners/${runner}/`));
      const keyfiles = mine.filter((f) => f.path.endsWith(".nmconnection"));
      const dispatcher = mine.find((f) => f.path.includes("/dispatcher.d/"));
      assert.is(keyfiles.length, 2, "a tunnel and an uplink keyfile");
      assert.ok(dispatcher, "a dispatcher script");
      for (const k of keyfiles)
        assert.equal(
          nmcliProblems(k.contents),
          [],
          `${k.path}:\n${k.contents}`,
        );
      assert.equal(shellProblems(dispatcher!.contents), [], dispatcher!.path);
      // WireGuard and IPsec runners also get the loader of the tunnel's secret.
      const model = result.labs![0]!;
      const runnerModel = model.runners.find((r) => r.name === runner)!;
      const byPath = new Map(files.map((f) => [f.path, f.contents]));
      const loader = byPath.get(
        `${paths.rootfs(model, runnerModel)}/${paths.secretsLoader(model)}`,
      );
      const kind = runnerModel.tunnel.type;
      assert.is(loader !== undefined, kind !== "openvpn", kind);
      if (loader !== undefined)
        assert.equal(shellProblems(loader), [], `${kind} loader`);
      const userData = byPath.get(paths.workerUserData(model, runnerModel));
      assert.ok(userData, "the worker user data of the runner");
      assert.equal(cloudInitProblems(userData!), [], userData);
    }),
    { numRuns: 20 },
  );
});

/**
 * Strings that a YAML writer must quote or escape, because a YAML 1.1 reader (PyYAML, which
 * cki-tools' gitrepo-trigger uses) or a YAML 1.2 reader would take them for something else:
 * booleans, nulls, octal and sexagesimal numbers, timestamps, merge keys, indicators, comments,
 * leading and trailing space, line breaks, invisible and non-BMP characters.
 */
const YAML_LOOKALIKES = [
  "yes",
  "No",
  "on",
  "OFF",
  "y",
  "n",
  "~",
  "null",
  "Null",
  "true",
  "False",
  "0644",
  "0o17",
  "0x1F",
  "1_000",
  "1:20",
  "12:30:45",
  "2001-12-14",
  "2001-12-14t21:59:43.10-05:00",
  ".inf",
  "-.Inf",
  ".NaN",
  "1e3",
  "+1",
  "-0",
  "<<",
  "=",
  "- a",
  "? x",
  "a: b",
  "a #b",
  "#c",
  "@x",
  "`x",
  "!tag",
  "&a",
  "*a",
  "|",
  "> x",
  "%x",
  "'q'",
  '"dq"',
  " lead",
  "trail ",
  "",
  "\ttab",
  "a\tb",
  "multi\nline",
  "multi\nline\n",
  "\n",
  "x\r\ny",
  "u\u2028v",
  "n\u0085l",
  "\uFEFFbom",
  "é",
  "日本語",
  "😀",
  "---",
  "...",
  "[a, b]",
  "{a: 1}",
  "a,b",
];

const extraValue = fc.oneof(
  fc.constantFrom(...YAML_LOOKALIKES),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
);
const extraKey = fc.oneof(
  // Those gen-lab takes for variable names (letters, digits and _, no digit first): the schema refuses the rest.
  fc.constantFrom(
    ...YAML_LOOKALIKES.filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)),
  ),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/),
);

test("pass-through strings: a YAML 1.2 reader and PyYAML get back exactly the trigger's extra values (300 labs)", () => {
  const cases: PyyamlRoundTrip[] = [];
  fc.assert(
    fc.property(
      labParams,
      fc.dictionary(extraKey, extraValue, { maxKeys: 6 }),
      (p, extra) => {
        fc.pre(!TRIGGER_KEYS.some((k) => k in extra));
        const lab = buildLab(p) as { pipeline: { triggers: Json[] } };
        const trigger = lab.pipeline.triggers[0] as Record<string, Json>;
        trigger["extra"] = extra;
        const result = check(stringify(lab));
        // A value no UTF-8 pipeline variable can hold (a NUL or other control character, an
        // unpaired surrogate) is an error at that value; every other one passes through.
        const unfit = Object.keys(extra).filter((k) =>
          /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uD800-\uDFFF]/u.test(
            extra[k]!,
          ),
        );
        if (unfit.length > 0) {
          assert.equal(
            errorsOf(result.diagnostics)
              .map((d) => d.path)
              .sort(),
            unfit.map((k) => `pipeline.triggers[0].extra.${k}`).sort(),
            JSON.stringify(extra),
          );
          return;
        }
        assert.equal(errorsOf(result.diagnostics), [], JSON.stringify(extra));
        const model = result.labs![0]!;
        const files = new Map(generate(model).map((f) => [f.path, f.contents]));
        const expected = {
          ...extra,
          git_url: trigger["git_url"]!,
          branch: trigger["branch"]!,
          cki_pipeline_branch: trigger["name"]!,
        };
        const pipelineData = files.get(paths.pipelineData(model))!;
        const kubernetes = files.get(paths.kubernetes(model))!;
        const configKey = `${model.name}.yaml`;
        // A YAML 1.2 reader here; PyYAML (YAML 1.1, what gitrepo-trigger reads it with) below.
        // (The yaml package's own YAML 1.1 mode is no oracle: it reads the key E0 as NaN.)
        const data = parse(pipelineData) as Record<string, Json>;
        assert.equal(data["main"], expected);
        // The ConfigMap carries the same text, byte for byte.
        const [configMap] = parseAllDocuments(kubernetes).map(
          (d) => d.toJS() as { data: Record<string, string> },
        );
        assert.is(configMap!.data[configKey], pipelineData);
        cases.push({ pipelineData, kubernetes, configKey, expected });
      },
    ),
    { numRuns: 300 },
  );
  assert.equal(pyyamlMismatches(cases), []);
});

// ---------------------------------------------------------------------- mutations

const clone = <T>(x: T): T => structuredClone(x);

function leaves(value: Json, at: Path = []): Path[] {
  if (Array.isArray(value))
    return value.flatMap((v, i) => leaves(v, [...at, i]));
  if (value !== null && typeof value === "object")
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...at, k]));
  return [at];
}

function getAt(root: Json, at: Path): Json {
  let v: Json = root;
  for (const step of at) v = (v as Record<string | number, Json>)[step]!;
  return v;
}

function setAt(root: Json, at: Path, value: Json | undefined): void {
  const parent = getAt(root, at.slice(0, -1)) as Record<string | number, Json>;
  const key = at[at.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else parent[key] = value;
}

/** A mutation: a new lab text, its kind, and whether the lab must be rejected. */
interface Mutant {
  readonly kind: string;
  readonly text: string;
  readonly mustReject: boolean;
}

const OTHER_TYPES: Json[] = [
  null,
  true,
  7,
  -1,
  "text",
  [],
  {},
  ["a", "b"],
  { x: 1 },
];
const sameType = (a: Json, b: Json) =>
  (a === null) === (b === null) &&
  Array.isArray(a) === Array.isArray(b) &&
  typeof a === typeof b;

const wrongType = fc
  .tuple(validLab, fc.nat(), fc.constantFrom(...OTHER_TYPES))
  .map(([lab, i, value]): Mutant => {
    const all = leaves(lab);
    const at = all[i % all.length]!;
    const original = getAt(lab, at);
    const replacement = sameType(original, value)
      ? typeof original === "string"
        ? 12345
        : "text"
      : value;
    const out = clone(lab);
    setAt(out, at, replacement);
    return {
      kind: `wrong type at ${at.join(".")}: ${JSON.stringify(replacement)}`,
      text: stringify(out),
      mustReject: true,
    };
  });

/** Keys every lab of buildLab() needs, and per tunnel kind. */
const REQUIRED: Path[] = [
  ["version"],
  ["name"],
  ["intranet"],
  ["intranet", "cidrs"],
  ["intranet", "domains"],
  ["beaker"],
  ["beaker", "url"],
  ["vpn"],
  ["vpn", "type"],
  ["vpn", "remote"],
  ["aws"],
  ["aws", "region"],
  ["aws", "vpc_id"],
  ["aws", "vpc_cidr"],
  ["aws", "ami"],
  ["aws", "internet_gateway_id"],
  ["aws", "zones"],
  ["runners"],
  ["runners", 0, "name"],
  ["runners", 0, "zone"],
  ["runners", 0, "address"],
  ["runners", 0, "vpn"],
  ["pipeline"],
  ["pipeline", "project"],
  ["pipeline", "schedule"],
  ["pipeline", "triggers"],
  ["pipeline", "triggers", 0, "git_url"],
  ["pipeline", "triggers", 0, "branch"],
];

const removedRequired = fc.tuple(validLab, fc.nat()).map(([lab, i]): Mutant => {
  const zone = Object.keys(
    (lab as { aws: { zones: Record<string, Json> } }).aws.zones,
  )[0]!;
  const vpn = (lab as { runners: { vpn: Record<string, Json> }[] }).runners[0]!
    .vpn;
  const perKind = Object.keys(vpn)
    .filter((k) => k !== "port" && k !== "key_direction")
    .map((k) => ["runners", 0, "vpn", k]);
  const candidates = [
    ...REQUIRED,
    ["aws", "zones", zone, "runner_subnet"],
    ["aws", "zones", zone, "worker_subnet"],
    ["aws", "zones", zone, "nat_gateway_id"],
    ...perKind,
  ];
  const at = candidates[i % candidates.length]!;
  const out = clone(lab);
  setAt(out, at, undefined);
  return {
    kind: `removed ${at.join(".")}`,
    text: stringify(out),
    mustReject: true,
  };
});

const removedAny = fc.tuple(validLab, fc.nat()).map(([lab, i]): Mutant => {
  const all = leaves(lab);
  const at = all[i % all.length]!;
  const out = clone(lab);
  setAt(out, at, undefined);
  return {
    kind: `removed leaf ${at.join(".")}`,
    text: stringify(out),
    mustReject: false,
  };
});

type LabShape = {
  aws: {
    vpc_cidr: string;
    zones: Record<string, { runner_subnet: string; worker_subnet: string }>;
  };
  intranet: { cidrs: string[]; domains: string[] };
  runners: { address: string; vpn: Record<string, Json> }[];
  beaker: { url: string };
};

/** Rule violations that only relate fields to each other: each must be an error. */
const OVERLAPS: readonly [string, (lab: LabShape) => boolean][] = [
  [
    "intranet CIDR = VPC",
    (l) => ((l.intranet.cidrs[0] = l.aws.vpc_cidr), true),
  ],
  [
    "intranet CIDR inside Docker's bridge",
    (l) => ((l.intranet.cidrs[0] = "172.17.0.0/16"), true),
  ],
  [
    "intranet CIDRs overlap each other",
    (l) => (l.intranet.cidrs.push(l.intranet.cidrs[0]!), true),
  ],
  [
    "host bits set in the VPC CIDR",
    (l) => ((l.aws.vpc_cidr = l.aws.vpc_cidr.replace(".0.0/", ".0.1/")), true),
  ],
  [
    "worker subnet = runner subnet",
    (l) => {
      const z = Object.values(l.aws.zones)[0]!;
      z.worker_subnet = z.runner_subnet;
      return true;
    },
  ],
  [
    "subnet outside the VPC",
    (l) => {
      Object.values(l.aws.zones)[0]!.worker_subnet = "192.0.2.0/24";
      return true;
    },
  ],
  [
    "runner address AWS-reserved",
    (l) => {
      const a = l.runners[0]!.address.split(".");
      a[3] = "3";
      l.runners[0]!.address = a.join(".");
      return true;
    },
  ],
  [
    "runner address is the broadcast address",
    (l) => {
      const a = l.runners[0]!.address.split(".");
      a[3] = "15";
      l.runners[0]!.address = a.join(".");
      return true;
    },
  ],
  [
    "two runners in one zone",
    (l) => {
      if (l.runners.length < 2) return false;
      (l.runners[1] as unknown as { zone: string }).zone = (
        l.runners[0] as unknown as { zone: string }
      ).zone;
      return true;
    },
  ],
  [
    "shared credential file",
    (l) => {
      if (l.runners.length < 2) return false;
      const key = Object.keys(l.runners[0]!.vpn).find((k) =>
        /key|cert|file/.test(k),
      );
      if (!key) return false;
      l.runners[1]!.vpn[key] = l.runners[0]!.vpn[key]!;
      return true;
    },
  ],
  [
    "beaker host outside intranet.domains",
    (l) => ((l.beaker.url = "https://beaker.elsewhere.invalid"), true),
  ],
  [
    "routing domain listed under another",
    (l) => (l.intranet.domains.push(`sub.${l.intranet.domains[0]}`), true),
  ],
  [
    "PEM block in a value",
    (l) => (
      (l.runners[0]!.vpn["key"] =
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
      true
    ),
  ],
];

const overlap = fc
  .tuple(validLab, fc.nat())
  .map(([lab, i]): Mutant | undefined => {
    const [kind, apply] = OVERLAPS[i % OVERLAPS.length]!;
    const out = clone(lab) as unknown as LabShape;
    if (!apply(out)) return undefined;
    return { kind, text: stringify(out), mustReject: true };
  })
  .filter((m): m is Mutant => m !== undefined);

const NUMERIC_PATHS = (lab: Json): Path[] =>
  leaves(lab).filter((at) => typeof getAt(lab, at) === "number");

const hugeNumber = fc
  .tuple(
    validLab,
    fc.nat(),
    fc.constantFrom(
      "1e308",
      "9007199254740993",
      "-1",
      "1.5",
      "65536",
      ".inf",
      "-.inf",
      ".nan",
      "1_000",
      "99999999999999999999999999999999999999",
    ),
  )
  .map(([lab, i, yamlNumber]): Mutant => {
    const all = NUMERIC_PATHS(lab);
    const at = all[i % all.length]!;
    const out = clone(lab);
    setAt(out, at, "__NUMBER__");
    return {
      kind: `number ${yamlNumber} at ${at.join(".")}`,
      // Written as YAML source so that YAML, not JSON, decides what the number is.
      text: stringify(out).replace(/"?__NUMBER__"?/, yamlNumber),
      // 1_000 is a string in YAML 1.2's core schema (0x1F90 would be 8080, a valid port);
      // all others are out of range for every numeric field of the format.
      mustReject: true,
    };
  });

const deepNesting = fc
  .tuple(validLab, fc.nat(), fc.integer({ min: 50, max: 20_000 }), fc.boolean())
  .map(([lab, i, depth, flowMap]): Mutant => {
    const all = leaves(lab);
    const at = all[i % all.length]!;
    const out = clone(lab);
    setAt(out, at, "__DEEP__");
    const deep = flowMap
      ? `${"{a: ".repeat(depth)}1${"}".repeat(depth)}`
      : `${"[".repeat(depth)}1${"]".repeat(depth)}`;
    return {
      kind: `${flowMap ? "mapping" : "list"} nested ${depth} deep at ${at.join(".")}`,
      text: stringify(out).replace(/"?__DEEP__"?/, deep),
      mustReject: true,
    };
  });

/** Values that must never reach a script unquoted; all of them are invalid in every constrained field. */
export const HOSTILE: readonly string[] = [
  "$(touch /tmp/gen-lab-pwned)",
  "`touch /tmp/gen-lab-pwned`",
  "x; touch /tmp/gen-lab-pwned",
  "x' ; touch /tmp/gen-lab-pwned ; '",
  'x" ; touch /tmp/gen-lab-pwned ; "',
  "x\ntouch /tmp/gen-lab-pwned",
  "*",
  "a b",
  "../../etc/passwd",
  "ünïcödé",
  "\u202eevil",
  "x\u0000y",
  "-rf",
  "${IFS}",
  "a\\nb",
  "",
];

/**
 * String leaves whose schema is a pattern of plain characters. URLs (beaker.url, git_url) may
 * carry almost anything in their path, and trigger `extra` values are free text: both go
 * only into YAML files, where they are data.
 */
const CONSTRAINED = (at: Path) =>
  !(at[0] === "pipeline" && at[3] === "extra") &&
  !(at[0] === "beaker" && at[1] === "url") &&
  !(at[0] === "pipeline" && at[3] === "git_url");
/** Characters outside every pattern of the format. */
const OUTSIDE_PATTERNS = /[^A-Za-z0-9._/-]|^$/;

const injected = fc
  .tuple(validLab, fc.nat(), fc.constantFrom(...HOSTILE), fc.boolean())
  .map(([lab, i, payload, append]): Mutant => {
    const all = leaves(lab).filter((at) => typeof getAt(lab, at) === "string");
    const at = all[i % all.length]!;
    const out = clone(lab);
    const value = append ? `${getAt(lab, at) as string}${payload}` : payload;
    setAt(out, at, value);
    return {
      kind: `${JSON.stringify(value)} at ${at.join(".")}`,
      text: stringify(out),
      mustReject:
        CONSTRAINED(at) &&
        OUTSIDE_PATTERNS.test(payload) &&
        !(append && payload === ""),
    };
  });

/** Damage to the text itself: truncation, inserted bytes, tabs. May happen to stay valid. */
const damagedText = fc
  .tuple(
    validLab,
    fc.nat(),
    fc.constantFrom(
      "",
      "\t",
      ":",
      "- ",
      "&a ",
      "*a",
      "!!binary ",
      "? ",
      "\n  - x\n",
      '"',
      "'",
      "%YAML 1.1\n---\n",
      "---\n",
      "\uFEFF",
      "\u00e9",
    ),
    fc.boolean(),
  )
  .map(([lab, i, insert, truncate]): Mutant => {
    const text = stringify(lab);
    const at = i % (text.length + 1);
    return {
      kind: `${truncate ? "truncated" : "inserted"} ${JSON.stringify(insert)} at ${at}`,
      text: truncate
        ? text.slice(0, at) + insert
        : text.slice(0, at) + insert + text.slice(at),
      mustReject: false,
    };
  });

const mutants = fc.oneof(
  wrongType,
  removedRequired,
  removedAny,
  overlap,
  hugeNumber,
  deepNesting,
  injected,
  damagedText,
);

/** The mutant's outcome: never an exception; rejected with located errors, or (if allowed) accepted and generated. */
function assertHandled(m: Mutant): void {
  let result;
  try {
    result = check(m.text);
  } catch (e) {
    assert.unreachable(
      `checkLabs threw on ${m.kind}: ${(e as Error).stack}\n--- lab:\n${m.text.slice(0, 2000)}`,
    );
    return;
  }
  const errors = errorsOf(result.diagnostics);
  if (result.labs === undefined) {
    assert.ok(errors.length > 0, `rejected without an error: ${m.kind}`);
    for (const d of result.diagnostics) {
      assert.is(d.file, FILE, m.kind);
      assert.ok(
        Number.isInteger(d.line) && d.line >= 1,
        `line ${d.line}: ${m.kind}`,
      );
      assert.ok(
        Number.isInteger(d.column) && d.column >= 1,
        `column ${d.column}: ${m.kind}`,
      );
      assert.type(d.path, "string");
      assert.ok(d.message.length > 0 && d.hint.length > 0, m.kind);
    }
    // A lab that is well-formed YAML but wrong points at the key it is wrong about.
    if (m.mustReject && !/YAML|not a mapping|empty/.test(errors[0]!.message))
      assert.ok(
        errors.some((d) => d.path !== ""),
        `no error names a path: ${m.kind}: ${JSON.stringify(errors)}`,
      );
    return;
  }
  assert.not.ok(
    m.mustReject,
    `accepted although invalid: ${m.kind}\n--- lab:\n${m.text}`,
  );
  try {
    generate(result.labs);
  } catch (e) {
    assert.unreachable(
      `generate threw on an accepted lab (${m.kind}): ${(e as Error).stack}`,
    );
  }
}

test("broken labs: always located diagnostics, never an exception (600 mutants, in-process)", () => {
  fc.assert(fc.property(mutants, assertHandled), { numRuns: 600 });
});

test("broken labs through the CLI: exit 2, no stack trace, nothing written (20 mutants)", () => {
  const samples = fc.sample(
    fc.oneof(
      wrongType,
      removedRequired,
      overlap,
      hugeNumber,
      deepNesting,
      injected,
    ),
    { numRuns: 20, seed: 5 },
  );
  const { dir, cleanup } = tempDir();
  try {
    samples.forEach((m, i) => {
      const file = path.join(dir, `m${i}.yaml`);
      fs.writeFileSync(file, m.text);
      const out = path.join(dir, `out${i}`);
      const r = runCli([file, "-o", out]);
      assert.is(r.status, 2, `${m.kind}: ${r.stderr}`);
      assert.not.ok(fs.existsSync(out), `${m.kind}: nothing written`);
      assert.not.match(r.stderr, /^\s+at /m, `${m.kind}: stack trace`);
      assert.not.match(r.stderr, /internal error/, m.kind);
      assert.match(
        r.stderr,
        new RegExp(
          `${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:[1-9]\\d*:[1-9]\\d*: `,
        ),
        `${m.kind}: a located diagnostic`,
      );
      assert.match(r.stderr, /nothing written/, m.kind);
    });
  } finally {
    cleanup();
  }
});

test.run();
