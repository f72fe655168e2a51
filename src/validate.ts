import { LineCounter, Parser } from "yaml";
import type { z } from "zod";
import {
  MAX_DIAGNOSTICS_PER_FILE,
  notShown,
  type Diagnostic,
  type Severity,
} from "./diagnostics.js";
import { bucketName, DEFAULT_OPENVPN_PORT, resolveLab } from "./model.js";
import type { LabModel } from "./model.js";
import { wireguardInterface } from "./render/nm-keyfiles.js";
import { triggerYaml } from "./render/pipeline-data.js";
import { renderWorkerUserData } from "./render/worker-user-data.js";
import {
  addressAt,
  awsReservedAddresses,
  containsAddress,
  contains,
  hostBitsZero,
  hostNet,
  ipv4Problem,
  networkOf,
  overlaps,
  parseNet,
  type Net,
} from "./net.js";
import {
  HINT_SEPARATOR,
  LabSchema,
  VPN_TYPES,
  type LabInput,
} from "./schema.js";
import type { LabSource, YamlPath } from "./source.js";
import { checkSchedule } from "./cron.js";
import { ikeProblem } from "./ike.js";

/** Collects located diagnostics for one lab file. */
class Reporter {
  private readonly kept: Diagnostic[] = [];
  /** How many more than {@link MAX_DIAGNOSTICS_PER_FILE} were reported, and not located. */
  private dropped = 0;
  /** Paths of numbers reported as out of range: zod has several complaints about each. */
  readonly outOfRange = new Set<string>();
  constructor(readonly source: LabSource) {}

  /** What was reported: at most MAX_DIAGNOSTICS_PER_FILE, then one line for the rest. */
  get list(): Diagnostic[] {
    if (this.dropped === 0) return this.kept;
    return [
      ...this.kept,
      notShown(this.dropped, { file: this.source.file, line: 1, column: 1 }),
    ];
  }

  /** Room for one more diagnostic; otherwise it is only counted (locating it costs time). */
  private room(): boolean {
    if (this.kept.length < MAX_DIAGNOSTICS_PER_FILE) return true;
    this.dropped++;
    return false;
  }

  report(
    severity: Severity,
    path: YamlPath,
    message: string,
    hint: string,
    opts: { key?: boolean } = {},
  ): void {
    if (!this.room()) return;
    const { line, column } = this.source.locate(path, opts);
    this.kept.push({
      severity,
      file: this.source.file,
      line,
      column,
      path: formatPath(path),
      message,
      hint,
    });
  }
  error(
    path: YamlPath,
    message: string,
    hint: string,
    opts?: { key?: boolean },
  ): void {
    this.report("error", path, message, hint, opts);
  }
  warn(path: YamlPath, message: string, hint: string): void {
    this.report("warning", path, message, hint);
  }
  /** An error at a place in the text that is no node of the data (a comment): no YAML path. */
  errorAt(
    position: { line: number; col: number },
    message: string,
    hint: string,
  ): void {
    if (!this.room()) return;
    this.kept.push({
      severity: "error",
      file: this.source.file,
      line: position.line,
      column: position.col,
      path: "",
      message,
      hint,
    });
  }
  where(path: YamlPath): string {
    const { line, column } = this.source.locate(path);
    return `${this.source.file}:${line}:${column}`;
  }
}

/** `runners[0].vpn.port`, the way the YAML path is written in every message. */
export function formatPath(path: YamlPath): string {
  let out = "";
  for (const step of path) {
    if (typeof step === "number") out += `[${step}]`;
    else out += out === "" ? step : `.${step}`;
  }
  return out;
}

/** Shape check of one parsed lab: zod issues turned into located diagnostics. */
export function checkShape(source: LabSource): {
  input?: LabInput;
  diagnostics: Diagnostic[];
} {
  const r = new Reporter(source);
  // Secrets are looked for first and whatever the shape: key material must never pass unnoticed.
  checkNoSecrets(r, source.data, []);
  checkNoSecretsInText(r, source.text);
  // A list of 100,000 wrong values would drown the shape check (and overflow zod's stack).
  if (anyTooLarge(source.data)) {
    checkSizes(r, source.data, []);
    return { input: undefined, diagnostics: r.list };
  }
  const parsed = LabSchema.safeParse(source.data);
  if (!parsed.success)
    for (const issue of parsed.error.issues) reportIssue(r, issue);
  return {
    input: parsed.success && r.list.length === 0 ? parsed.data : undefined,
    diagnostics: r.list,
  };
}

/**
 * The most items of any list, and keys of any mapping, a lab file may hold: a bound for every
 * cross-check to stay fast, above any real lab (the consumers' own, lower limits on domains,
 * nameservers and intranet ranges are checkListLimits').
 */
export const MAX_COLLECTION_SIZE = 1000;

/** Whether any list or mapping holds more than MAX_COLLECTION_SIZE entries (no allocation per node). */
function anyTooLarge(value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) {
    if (value.length > MAX_COLLECTION_SIZE) return true;
    for (const v of value) if (anyTooLarge(v)) return true;
    return false;
  }
  let n = 0;
  for (const key in value) {
    if (++n > MAX_COLLECTION_SIZE) return true;
    if (anyTooLarge((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

/** Report each list and mapping over MAX_COLLECTION_SIZE, at its path. */
function checkSizes(r: Reporter, value: unknown, path: YamlPath): void {
  if (value === null || typeof value !== "object") return;
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  if (entries.length > MAX_COLLECTION_SIZE) {
    const what = Array.isArray(value) ? "list" : "mapping";
    r.error(
      path,
      `this ${what} has ${entries.length} ${Array.isArray(value) ? "items" : "keys"}, more than a lab file may hold (${MAX_COLLECTION_SIZE})`,
      "a lab's lists are short; check that this is the right file, or split the lab",
    );
    return;
  }
  for (const [step, v] of entries) checkSizes(r, v, [...path, step]);
}

function reportIssue(r: Reporter, issue: z.core.$ZodIssue): void {
  const path = issue.path.filter(
    (p): p is string | number => typeof p !== "symbol",
  );
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(r.source.data, path);
    for (const key of issue.keys) {
      if (key === "<<") {
        r.error(
          [...path, key],
          "a YAML merge key (`<<`) is not read: in YAML 1.2, which gen-lab reads, it is an ordinary key",
          "write the keys it would merge into this mapping itself",
          { key: true },
        );
        continue;
      }
      const near = closest(key, known);
      r.error(
        [...path, key],
        `unknown key "${key}"`,
        near
          ? `did you mean "${near}"?`
          : `remove it; allowed here: ${known.join(", ")}`,
        { key: true },
      );
    }
    return;
  }
  if (issue.code === "invalid_key") {
    // A record key (a zone name) that fails its pattern: the key's own message, about the key.
    const inner = issue.issues[0]?.message ?? "";
    const [message, hint] = inner.includes(HINT_SEPARATOR)
      ? (inner.split(HINT_SEPARATOR) as [string, string])
      : [
          "is not a valid key here",
          "see ../shared/lab-format.md for this field",
        ];
    r.error(
      path,
      `key ${message}, got ${JSON.stringify(String(path[path.length - 1]))}`,
      hint,
      { key: true },
    );
    return;
  }
  const [message, hint] = issue.message.includes(HINT_SEPARATOR)
    ? (issue.message.split(HINT_SEPARATOR) as [string, string])
    : defaultMessage(issue);
  // A key left out: zod says the type (or for `version`, the literal value) is wrong.
  if (
    (issue.code === "invalid_type" || issue.code === "invalid_value") &&
    valueAt(r.source.data, path) === undefined
  ) {
    const key = path[path.length - 1];
    const parent = formatPath(path.slice(0, -1));
    r.error(
      path,
      `missing required key "${String(key)}"`,
      `add ${String(key)}: ${parent === "" ? "at the top level" : `under ${parent}`}; labs/foo.yaml shows every field`,
    );
    return;
  }
  if (
    issue.code === "invalid_union" &&
    (issue as { note?: string }).note === "No matching discriminator"
  ) {
    // zod's path ends at the discriminator when the union is where it expects one.
    const at = path[path.length - 1] === "type" ? path : [...path, "type"];
    const type = valueAt(r.source.data, at);
    if (type === undefined)
      r.error(
        at,
        'missing required key "type"',
        `add type: openvpn, wireguard or ipsec under ${formatPath(at.slice(0, -1))}: the tunnel type the lab offers`,
      );
    else
      r.error(
        at,
        `vpn.type must be openvpn, wireguard or ipsec, got ${describe(type)}`,
        typeof type === "string" && closest(type, VPN_TYPES)
          ? `did you mean "${closest(type, VPN_TYPES)}"?`
          : "pick the tunnel type the lab offers",
      );
    return;
  }
  const value = valueAt(r.source.data, path);
  if (
    issue.code === "invalid_type" &&
    issue.expected === "string" &&
    (typeof value === "number" || typeof value === "boolean")
  ) {
    // YAML read `5.10` as the number 5.1: show what was written, and how to keep it.
    const written = writtenAt(r.source, path) ?? String(value);
    r.error(
      path,
      `${message}, got ${typeof value === "number" ? "the number" : "the boolean"} ${written}`,
      `quote it to keep it as written: "${written}"`,
    );
    return;
  }
  if (
    typeof value === "number" &&
    !Number.isNaN(value) &&
    !(Math.abs(value) <= Number.MAX_SAFE_INTEGER)
  ) {
    // Beyond 2^53 a JavaScript number no longer holds the integer written (9007199254740993
    // reads as ...992, 1e400 as Infinity): one error, naming the number as written.
    const key = formatPath(path);
    if (r.outOfRange.has(key)) return;
    r.outOfRange.add(key);
    r.error(
      path,
      `is out of range, got ${writtenAt(r.source, path) ?? String(value)}`,
      hint,
    );
    return;
  }
  const got = describe(value);
  r.error(path, got === undefined ? message : `${message}, got ${got}`, hint);
}

/** The plain scalar as written in the lab at `path` (`5.10`, `007`, `yes`), if one is there. */
function writtenAt(source: LabSource, path: YamlPath): string | undefined {
  const { line, column } = source.locate(path);
  const text = source.text.split("\n")[line - 1]?.slice(column - 1);
  return text?.match(/^[^\s,\]}#"']+/)?.[0];
}

function defaultMessage(issue: z.core.$ZodIssue): [string, string] {
  switch (issue.code) {
    case "invalid_type":
      return [
        `must be ${article(issue.expected)}`,
        `write ${article(issue.expected)} here`,
      ];
    case "too_small":
      return [
        `is too small (minimum ${String(issue.minimum)})`,
        "raise the value",
      ];
    case "too_big":
      return [
        `is too large (maximum ${String(issue.maximum)})`,
        "lower the value",
      ];
    default:
      return [issue.message, "see ../shared/lab-format.md for this field"];
  }
}

function article(type: string): string {
  const named: Record<string, string> = {
    object: "a mapping",
    array: "a list",
    record: "a mapping",
    string: "a string",
    number: "a number",
    boolean: "true or false",
  };
  return named[type] ?? `a ${type}`;
}

/** Keys the schema allows at a mapping path (for "did you mean"). */
function knownKeys(data: unknown, path: YamlPath): string[] {
  const shape = shapeAt(path, valueAt(data, path));
  return shape ? Object.keys(shape).sort() : [];
}

/** Walk LabSchema's object shapes along a path to list the allowed keys there. */
function shapeAt(
  path: YamlPath,
  value: unknown,
): Record<string, unknown> | undefined {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let schema: any = LabSchema;
  for (const step of path) {
    schema = unwrap(schema);
    if (schema?.def?.type === "object")
      schema = schema.def.shape[step as string];
    else if (schema?.def?.type === "array") schema = schema.def.element;
    else if (schema?.def?.type === "record") schema = schema.def.valueType;
    else if (schema?.def?.type === "union") schema = undefined;
    else return undefined;
  }
  schema = unwrap(schema);
  if (schema?.def?.type === "union" && value && typeof value === "object") {
    const type = (value as { type?: unknown }).type;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    schema = schema.def.options.find((o: any) =>
      o.def.shape.type?.def?.values?.includes(type),
    );
  }
  return schema?.def?.type === "object" ? schema.def.shape : undefined;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function unwrap(schema: any): any {
  while (
    schema &&
    ["optional", "default", "nullable", "pipe"].includes(schema.def?.type)
  ) {
    schema = schema.def.type === "pipe" ? schema.def.in : schema.def.innerType;
  }
  return schema;
}

function closest(
  word: string,
  candidates: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestScore) [best, bestScore] = [c, d];
  }
  return best !== undefined &&
    bestScore <= Math.max(2, Math.floor(word.length / 3))
    ? best
    : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function valueAt(data: unknown, path: YamlPath): unknown {
  let v = data;
  for (const step of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, step))
      return undefined;
    v = (v as Record<string | number, unknown>)[step];
  }
  return v;
}

function describe(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (v === null) return "nothing (null)";
  if (typeof v === "string")
    return (
      JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v) + lookalike(v)
    );
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return Array.isArray(v) ? "a list" : "a mapping";
}

/**
 * A letter, digit, mark or space outside ASCII reads like an ASCII one, or not at all (a
 * Cyrillic о, a no-break space): ` (character N is U+XXXX, not ASCII)` names the first such,
 * so that "got "fоo"" next to "for example "foo"" shows what differs. "" when there is none.
 */
function lookalike(text: string): string {
  const chars = [...text];
  const at = chars.findIndex((c) =>
    /(?![\x00-\x7F])[\p{L}\p{M}\p{N}\p{Z}\p{Cf}]/u.test(c),
  );
  if (at < 0) return "";
  const code = chars[at]!.codePointAt(0)!.toString(16).toUpperCase();
  return ` (character ${at + 1} is U+${code.padStart(4, "0")}, not ASCII)`;
}

/** What no route can send into a tunnel: the kernel keeps these ranges for itself. */
const NOT_ROUTABLE_HINT =
  "the kernel never routes these addresses to an interface: choose another range (the lab must renumber, or leave this range out)";
/**
 * Docker's default bridge and link-local: present on every runner and worker, so an overlap
 * breaks routing. And the ranges no host routes at all (RFC 6890): "this network", loopback,
 * multicast and the reserved class E with the limited broadcast address.
 */
const FORBIDDEN: readonly { net: Net; why: string; hint?: string }[] = [
  {
    net: parseNet("0.0.0.0/8"),
    why: '"this network" (RFC 1122), no destination address',
    hint: NOT_ROUTABLE_HINT,
  },
  {
    net: parseNet("127.0.0.0/8"),
    why: "loopback, the host itself",
    hint: NOT_ROUTABLE_HINT,
  },
  { net: parseNet("172.17.0.0/16"), why: "Docker's default bridge (docker0)" },
  { net: parseNet("169.254.0.0/16"), why: "link-local (AWS metadata and DNS)" },
  {
    net: parseNet("224.0.0.0/4"),
    why: "multicast",
    hint: NOT_ROUTABLE_HINT,
  },
  {
    net: parseNet("240.0.0.0/4"),
    why: "reserved (class E and the broadcast address 255.255.255.255)",
    hint: NOT_ROUTABLE_HINT,
  },
];
/** Docker's other default address pools: an overlap only bites once such a network is created. */
const DOCKER_POOLS: readonly Net[] = [
  ...Array.from({ length: 14 }, (_, i) => parseNet(`172.${18 + i}.0.0/16`)),
  parseNet("192.168.0.0/16"),
];

const PEM_RE = /-----BEGIN|PRIVATE KEY-----/;

/**
 * Every rule of lab-format.md that relates one lab's fields to each other.
 * Runs only on input that passed the shape check.
 */
export function checkLab(source: LabSource, lab: LabInput): Diagnostic[] {
  const r = new Reporter(source);

  // CIDRs: host bits, then containment and overlaps.
  const nets: { path: YamlPath; net: Net; what: string }[] = [];
  const cidr = (
    path: YamlPath,
    text: string,
    what: string,
  ): Net | undefined => {
    if (!hostBitsZero(text)) {
      r.error(
        path,
        `${text} has host bits set`,
        `write the network address: ${networkOf(text)}`,
      );
    }
    // Go on with the network it denotes, so one typo does not cascade into more errors.
    const net = parseNet(networkOf(text));
    nets.push({ path, net, what });
    return net;
  };

  const vpc = cidr(["aws", "vpc_cidr"], lab.aws.vpc_cidr, "the VPC");
  if (vpc) {
    checkAwsPrefix(r, ["aws", "vpc_cidr"], vpc, "VPC");
    checkReservedRanges(r, ["aws", "vpc_cidr"], vpc, "VPC CIDR", VPC_HINTS);
  }
  const intranet: { path: YamlPath; net: Net }[] = [];
  lab.intranet.cidrs.forEach((c, i) => {
    const net = cidr(["intranet", "cidrs", i], c, "an intranet CIDR");
    if (net) intranet.push({ path: ["intranet", "cidrs", i], net });
  });

  const subnets: { path: YamlPath; net: Net }[] = [];
  for (const [zone, z] of Object.entries(lab.aws.zones)) {
    // An availability zone is its region and one letter (the schema has checked the letter):
    // us-east-12b starts with us-east-1 but lies in us-east-12.
    if (zone.slice(0, -1) !== lab.aws.region) {
      r.error(
        ["aws", "zones", zone],
        `zone ${zone} is not in region ${lab.aws.region}`,
        `an availability zone of ${lab.aws.region} is its name and one letter, e.g. ${lab.aws.region}a; fix the zone or aws.region`,
        { key: true },
      );
    }
    for (const key of ["runner_subnet", "worker_subnet"] as const) {
      const path = ["aws", "zones", zone, key];
      const net = cidr(path, z[key], "a subnet");
      if (!net) continue;
      checkAwsPrefix(r, path, net, "subnet");
      if (vpc && !contains(vpc, net)) {
        r.error(
          path,
          `${z[key]} is not inside the VPC ${lab.aws.vpc_cidr}`,
          `pick a subnet of ${lab.aws.vpc_cidr}, or fix aws.vpc_cidr`,
        );
      }
      subnets.push({ path, net });
    }
  }
  pairwise(subnets, (a, b) => {
    if (overlaps(a.net, b.net)) {
      r.error(
        b.path,
        `${b.net.text} overlaps ${a.net.text} (${formatPath(a.path)})`,
        "give every subnet of the lab its own address range",
      );
      return true;
    }
    return false;
  });
  for (const i of intranet) {
    if (vpc && overlaps(i.net, vpc)) {
      r.error(
        i.path,
        `${i.net.text} overlaps the VPC ${lab.aws.vpc_cidr}`,
        "the intranet must be routable from the VPC; a lab range inside the VPC cannot be routed to the runner",
      );
    }
  }
  pairwise(intranet, (a, b) => {
    if (!overlaps(a.net, b.net)) return false;
    r.error(
      b.path,
      `${b.net.text} overlaps ${a.net.text} (${formatPath(a.path)})`,
      "list each intranet range once; merge or remove the overlapping one",
    );
    return true;
  });

  checkListLimits(r, lab);
  const inIntranet = (address: string) =>
    intranet.some((i) => containsAddress(i.net, address));
  // A list NetworkManager or gitrepo-trigger would shorten: each entry once.
  for (const [path, list] of [
    [["intranet", "nameservers"], lab.intranet.nameservers ?? []],
    [["pipeline", "runner_tags"], lab.pipeline.runner_tags ?? []],
  ] as const) {
    const first = new Map<string, number>();
    list.forEach((item, i) => {
      const at = first.get(item);
      if (at === undefined) first.set(item, i);
      else
        r.error(
          [...path, i],
          `${item} is listed twice (${formatPath([...path, at])})`,
          "list each entry once",
        );
    });
  }
  (lab.intranet.nameservers ?? []).forEach((ns, i) => {
    if (intranet.length > 0 && !inIntranet(ns)) {
      r.error(
        ["intranet", "nameservers", i],
        `${ns} is not inside intranet.cidrs`,
        "the nameservers are reached through the tunnel: use an address in the intranet, or add its range to intranet.cidrs",
      );
    }
    for (const { net } of intranet) {
      const notHost = notAHost(ns, net);
      if (notHost)
        r.error(
          ["intranet", "nameservers", i],
          `${ns} is ${notHost}, not a server's address`,
          "give the address of a DNS server in the lab",
        );
    }
  });

  // Zones and runners.
  const zoneNames = Object.keys(lab.aws.zones);
  const runnerOfZone = new Map<string, number>();
  const runnerNames = new Map<string, number>();
  lab.runners.forEach((runner, i) => {
    const seen = runnerNames.get(runner.name);
    if (seen !== undefined) {
      r.error(
        ["runners", i, "name"],
        `runner name ${runner.name} is already used by runners[${seen}]`,
        "give each runner a unique name",
      );
    } else runnerNames.set(runner.name, i);

    // Own keys only: a zone named like an Object method (toString, constructor) is not a zone.
    const zone = Object.hasOwn(lab.aws.zones, runner.zone)
      ? lab.aws.zones[runner.zone]
      : undefined;
    if (!zone) {
      r.error(
        ["runners", i, "zone"],
        `zone ${JSON.stringify(runner.zone)} is not in aws.zones`,
        zoneNames.length
          ? `use one of: ${zoneNames.join(", ")}`
          : "add the zone to aws.zones",
      );
      return;
    }
    const other = runnerOfZone.get(runner.zone);
    if (other !== undefined) {
      r.error(
        ["runners", i, "zone"],
        `zone ${runner.zone} already has runner ${lab.runners[other]!.name} (runners[${other}])`,
        "each zone has exactly one runner, its route target: move this runner to another zone",
      );
    } else runnerOfZone.set(runner.zone, i);

    {
      const subnet = parseNet(networkOf(zone.runner_subnet));
      if (!containsAddress(subnet, runner.address)) {
        r.error(
          ["runners", i, "address"],
          `${runner.address} is not in ${runner.zone}'s runner_subnet ${zone.runner_subnet}`,
          `pick an address in ${zone.runner_subnet}`,
        );
      } else if (awsReservedAddresses(subnet).includes(runner.address)) {
        r.error(
          ["runners", i, "address"],
          `${runner.address} is reserved by AWS in ${zone.runner_subnet} (the first four and the last address are)`,
          subnet.last - subnet.first > 5
            ? `pick ${lastOctet(addressAt(subnet, 4))}-${lastOctet(addressAt(subnet, -2))}`
            : "the subnet has no usable address: make the runner subnet at least a /28",
        );
      }
    }
  });
  zoneNames.forEach((zone) => {
    if (!runnerOfZone.has(zone) && lab.runners.every((x) => x.zone !== zone)) {
      r.error(
        ["aws", "zones", zone],
        `zone ${zone} has no runner`,
        "add one runner for this zone (its workers route the intranet through it), or remove the zone",
        { key: true },
      );
    }
  });

  lab.runners.forEach((runner, i) => {
    const taken = notAnUplink(runner.interface, lab);
    if (taken)
      r.error(
        ["runners", i, "interface"],
        `${runner.interface} is ${taken}, not the runner's ethernet uplink`,
        'give the interface the runner reaches the VPC through, for example "eth0" or "ens5"',
      );
  });
  checkTunnels(r, lab, vpc, intranet);
  checkCredentials(r, lab);
  checkEgressAndNames(r, lab, intranet);
  checkBucketsAndPipeline(r, lab);

  for (const i of intranet)
    checkReservedRanges(r, i.path, i.net, "intranet CIDR");
  checkVpnRemote(r, lab, intranet);
  if (!r.list.some((d) => d.severity === "error"))
    checkOutputLimits(r, lab, source.file);
  return r.list;
}

/**
 * systemd-resolved's limits per link (LINK_SEARCH_DOMAINS_MAX, LINK_DNS_SERVERS_MAX): past
 * them NetworkManager's call to set the tunnel's DNS fails as a whole, and the workers' global
 * list is cut.
 */
export const RESOLVED_DOMAINS_MAX = 256;
export const RESOLVED_SERVERS_MAX = 256;
/**
 * Routes per AWS route table: at most 1,000, 50 unless the quota is raised. Each worker route
 * table holds one route per intranet range and the default route.
 */
export const ROUTES_MAX = 1000;
export const ROUTES_DEFAULT_QUOTA = 50;

function checkListLimits(r: Reporter, lab: LabInput): void {
  const { domains, nameservers = [], cidrs } = lab.intranet;
  if (domains.length > RESOLVED_DOMAINS_MAX)
    r.error(
      ["intranet", "domains"],
      `${domains.length} routing domains, more than systemd-resolved takes for one interface (${RESOLVED_DOMAINS_MAX})`,
      "list fewer domains: a parent domain covers all its subdomains",
    );
  if (nameservers.length > RESOLVED_SERVERS_MAX)
    r.error(
      ["intranet", "nameservers"],
      `${nameservers.length} nameservers, more than systemd-resolved takes for one interface (${RESOLVED_SERVERS_MAX})`,
      "list the lab's DNS servers only",
    );
  const routes = cidrs.length + 1;
  if (routes > ROUTES_MAX)
    r.error(
      ["intranet", "cidrs"],
      `${cidrs.length} intranet ranges make ${routes} routes in each worker route table (with the default route), more than AWS allows (${ROUTES_MAX})`,
      "merge adjacent ranges into larger ones",
    );
  else if (routes > ROUTES_DEFAULT_QUOTA)
    r.warn(
      ["intranet", "cidrs"],
      `${cidrs.length} intranet ranges make ${routes} routes in each worker route table, more than AWS's default quota (${ROUTES_DEFAULT_QUOTA})`,
      "raise the 'Routes per route table' quota of the account (up to 1,000) before terraform apply, or merge adjacent ranges",
    );
}

/** EC2's limit on user data, before base64 (RunInstances refuses more). */
export const EC2_USER_DATA_MAX = 16 * 1024;
/** The API server's limit on a ConfigMap's data. */
export const CONFIGMAP_DATA_MAX = 1024 * 1024;
/**
 * `kubectl apply` (client-side) keeps the whole object in an annotation, and the API server
 * allows 256 KiB of annotations per object.
 */
export const LAST_APPLIED_MAX = 256 * 1024;

/**
 * Limits of the consumers on the size of what a valid lab generates: the workers' user data
 * grows with intranet.domains, the trigger's ConfigMap with pipeline.triggers.
 */
function checkOutputLimits(r: Reporter, lab: LabInput, file: string): void {
  // Rendered only when a limit is in reach: the user data is a few hundred bytes besides the
  // domains and two header lines naming the lab file; YAML writes a value in at most 8 times
  // the characters JSON does (indentation, escapes).
  const domains = lab.intranet.domains.reduce((n, d) => n + d.length + 2, 0);
  const userData = domains + 2 * file.length + 4096 > EC2_USER_DATA_MAX;
  const configMap =
    8 * JSON.stringify(lab.pipeline).length + 4096 > LAST_APPLIED_MAX;
  if (!userData && !configMap) return;
  const model = resolveLab(lab, file);
  if (userData) checkUserData(r, model);
  if (configMap) checkConfigMap(r, model);
}

function checkUserData(r: Reporter, model: LabModel): void {
  for (const runner of model.runners) {
    const bytes = Buffer.byteLength(
      renderWorkerUserData(model, runner).contents,
    );
    if (bytes > EC2_USER_DATA_MAX) {
      r.error(
        ["intranet", "domains"],
        `the workers' user data would be ${bytes} bytes, more than EC2 accepts (${EC2_USER_DATA_MAX})`,
        "list fewer routing domains: a parent domain covers all its subdomains",
      );
      break;
    }
  }
}

function checkConfigMap(r: Reporter, model: LabModel): void {
  const configMap = Buffer.byteLength(triggerYaml(model));
  if (configMap > CONFIGMAP_DATA_MAX)
    r.error(
      ["pipeline", "triggers"],
      `the trigger configuration would be ${configMap} bytes, more than a Kubernetes ConfigMap holds (${CONFIGMAP_DATA_MAX})`,
      "split the triggers over several labs, or shorten their extra values",
    );
  else if (configMap > LAST_APPLIED_MAX)
    r.warn(
      ["pipeline", "triggers"],
      `the trigger configuration is ${configMap} bytes: \`kubectl apply\` keeps a copy in an annotation of at most ${LAST_APPLIED_MAX}`,
      "apply the manifest with `kubectl apply --server-side`, which keeps no such copy",
    );
}

/**
 * The tunnel's endpoint, when it is an address: the runner reaches it outside the tunnel, so it
 * may not lie in the intranet (that route goes into the tunnel: it could never come up), on a
 * tunnel address, or in a range no host routes (loopback, multicast and the like).
 */
function checkVpnRemote(
  r: Reporter,
  lab: LabInput,
  intranet: readonly { path: YamlPath; net: Net }[],
): void {
  const remote = lab.vpn.remote;
  const path: YamlPath = ["vpn", "remote"];
  // localhost and its subdomains (RFC 6761), and the names /etc/hosts gives loopback on
  // RHEL and Fedora.
  if (/^localhost6?(?:\.localdomain6?)?\.?$|\.localhost\.?$/i.test(remote)) {
    r.error(
      path,
      `the VPN endpoint ${remote} is the runner itself (localhost names loopback)`,
      "give the host name or public address of the lab's VPN endpoint",
    );
    return;
  }
  // EC2 resolves these to its instance metadata service, 169.254.169.254.
  if (
    /^instance-data(?:\.ec2\.internal|\.[a-z0-9-]+\.compute\.internal)?\.?$/i.test(
      remote,
    )
  ) {
    r.error(
      path,
      `the VPN endpoint ${remote} is EC2's instance metadata service (169.254.169.254), on the runner's own link`,
      "give the host name or public address of the lab's VPN endpoint",
    );
    return;
  }
  if (!/^[\d.]+$/.test(remote) || ipv4Problem(remote) !== undefined) return;
  const at = hostNet(remote);
  const inside = intranet.find((i) => contains(i.net, at));
  if (inside)
    r.error(
      path,
      `the VPN endpoint ${remote} lies in the intranet ${inside.net.text}, which is routed into the tunnel it would carry`,
      "give the endpoint's public address; the intranet is what lies behind it",
    );
  for (const f of FORBIDDEN)
    if (contains(f.net, at))
      r.error(
        path,
        `the VPN endpoint ${remote} is in ${f.net.text}, ${f.why}`,
        "give the endpoint's public address",
      );
  const runner = lab.runners.findIndex((x) => x.address === remote);
  const vpc = parseNet(networkOf(lab.aws.vpc_cidr));
  if (runner >= 0)
    r.error(
      path,
      `the VPN endpoint ${remote} is runners[${runner}].address, the runner itself`,
      "give the endpoint's public address",
    );
  else if (contains(vpc, at))
    r.warn(
      path,
      `the VPN endpoint ${remote} is inside the VPC ${vpc.text}`,
      "the runners reach the lab's endpoint through the internet gateway: give its public address, unless the endpoint really runs in this VPC",
    );
  lab.runners.forEach((runner, i) => {
    for (const f of ["local_ip", "remote_ip", "address"] as const) {
      const own = (runner.vpn as Record<string, string | undefined>)[f];
      if (own === undefined) continue;
      const [address, prefix] = own.split("/");
      if (address === remote)
        r.error(
          path,
          `the VPN endpoint ${remote} is runners[${i}].vpn.${f}, an address inside the tunnel`,
          "give the endpoint's public address; the tunnel's own addresses are only reached through it",
        );
      else if (
        f === "address" &&
        prefix !== undefined &&
        lab.vpn.type === "wireguard" &&
        ipv4Problem(address!) === undefined &&
        /^\d+$/.test(prefix) &&
        Number(prefix) <= 32 &&
        contains(parseNet(networkOf(own)), at)
      )
        // WireGuard routes the address's network into the tunnel: the encrypted packets to the
        // endpoint would be sent into the tunnel that carries them.
        r.error(
          ["runners", i, "vpn", f],
          `${own} puts the VPN endpoint ${remote} inside the tunnel: the runner routes ${networkOf(own)} into the WireGuard interface, so the packets to the endpoint would go into the tunnel they carry`,
          `give the tunnel address a prefix that leaves the endpoint out, e.g. address: ${address}/32`,
        );
    }
  });
}

/** AWS's limits on the prefix of a VPC's and a subnet's IPv4 CIDR block (both /16 to /28). */
const AWS_PREFIX = { min: 16, max: 28 } as const;

function checkAwsPrefix(
  r: Reporter,
  path: YamlPath,
  net: Net,
  what: "VPC" | "subnet",
): void {
  if (net.prefix >= AWS_PREFIX.min && net.prefix <= AWS_PREFIX.max) return;
  const range = `/${AWS_PREFIX.min} to /${AWS_PREFIX.max}`;
  r.error(
    path,
    `${net.text} is ${net.prefix < AWS_PREFIX.min ? "larger" : "smaller"} than AWS allows: a ${what}'s CIDR block is ${range}`,
    what === "VPC"
      ? `aws.vpc_cidr is the VPC's CIDR block as AWS has it (${range}): copy it from the VPC`
      : `pick a ${range} network inside the VPC (a runner subnet needs at least a /28, workers more)`,
  );
}

/**
 * What a runner interface name already is, when it cannot be the uplink the runner's ethernet
 * profile binds to: loopback, Docker's bridge, an OpenVPN or the lab's WireGuard device.
 */
function notAnUplink(name: string, lab: LabInput): string | undefined {
  if (name === "lo") return "the loopback interface";
  if (name === "docker0") return "Docker's bridge";
  if (/^(?:tun|tap)\d*$/.test(name)) return "a tunnel device (OpenVPN's)";
  if (lab.vpn.type === "wireguard" && name === wireguardInterface(lab))
    return "the lab's WireGuard interface";
  return undefined;
}

/**
 * "the network address of <net>" or "the broadcast address of <net>" when `address` is one of
 * them, for a network with room for hosts between (a /31 or /32 is all hosts); else undefined.
 */
function notAHost(address: string, net: Net): string | undefined {
  if (net.prefix > 30 || !containsAddress(net, address)) return undefined;
  const at = hostNet(address).first;
  if (at === net.first) return `the network address of ${net.text}`;
  if (at === net.last) return `the broadcast address of ${net.text}`;
  return undefined;
}

/** `.14` for `10.0.0.14`: the short form people use for an address within a small subnet. */
function lastOctet(address: string): string {
  return `.${address.split(".")[3]}`;
}

/** The hints for a range routed into the tunnel (the intranet, tunnel addresses). */
const TUNNEL_HINTS = {
  forbidden:
    "traffic to it would never reach the tunnel: choose another range (the lab must renumber, or leave this range out)",
  pool: "a Docker network created from that pool on a runner or worker would shadow this route; set Docker's default-address-pools to avoid it",
} as const;

/**
 * The hints for the VPC, where the runners and workers have their own addresses. No Docker
 * pool warning: Docker skips a pool that overlaps a route of the host, which its own subnet
 * is (and AWS's default VPC, 172.31.0.0/16, lies in one).
 */
const VPC_HINTS = {
  forbidden:
    "every runner and worker has this range on an interface of its own, so VPC addresses in it are unreachable (the workers' DNS server among them); AWS advises against it too: use a VPC outside it",
  pool: undefined,
} as const;

function checkReservedRanges(
  r: Reporter,
  path: YamlPath,
  net: Net,
  what: string,
  hints: { forbidden: string; pool: string | undefined } = TUNNEL_HINTS,
): void {
  const shown = net.prefix === 32 ? net.text.slice(0, -3) : net.text;
  for (const f of FORBIDDEN) {
    if (overlaps(net, f.net)) {
      r.error(
        path,
        `${what} ${shown} overlaps ${f.net.text}, ${f.why}`,
        f.hint ?? hints.forbidden,
      );
    }
  }
  const pool = DOCKER_POOLS.find((p) => overlaps(net, p));
  if (pool && hints.pool) {
    r.warn(
      path,
      `${what} ${shown} overlaps Docker's default address pool ${pool.text}`,
      hints.pool,
    );
  }
}

/** Where tunnel addresses usually come from: private /24s, the habitual one first. */
const TUNNEL_RANGES: readonly Net[] = [
  "10.255.0.0/24",
  "10.254.0.0/24",
  "192.168.255.0/24",
  "172.31.255.0/24",
  "10.0.255.0/24",
  "192.168.254.0/24",
].map(parseNet);

/** `, e.g. from <range>`: the first usual tunnel range clear of the VPC and the intranet, or "". */
function freeTunnelRange(
  vpc: Net | undefined,
  intranet: readonly { net: Net }[],
): string {
  const free = TUNNEL_RANGES.find(
    (t) =>
      !(vpc && overlaps(t, vpc)) &&
      !intranet.some((i) => overlaps(t, i.net)) &&
      !DOCKER_POOLS.some((p) => overlaps(t, p)),
  );
  return free ? `, e.g. from ${free.text}` : "";
}

/** Per tunnel type: which per-runner fields are required, which make no sense, and the tunnel address rules. */
function checkTunnels(
  r: Reporter,
  lab: LabInput,
  vpc: Net | undefined,
  intranet: readonly { path: YamlPath; net: Net }[],
): void {
  const vpn = lab.vpn;
  type Field = keyof LabInput["runners"][number]["vpn"];
  let required: Field[];
  let kind: string;
  switch (vpn.type) {
    case "openvpn":
      kind = `openvpn ${vpn.auth}`;
      required =
        vpn.auth === "static-key"
          ? ["static_key", "local_ip", "remote_ip"]
          : ["cert", "key"];
      if (
        vpn.auth === "static-key" &&
        (lab.intranet.nameservers ?? []).length === 0
      ) {
        r.error(
          ["intranet"],
          "intranet.nameservers is required for openvpn static-key",
          "a static-key tunnel has no control channel, so no nameserver is pushed: list the lab's DNS servers in intranet.nameservers",
        );
      }
      if (vpn.cipher !== undefined) checkCipher(r, vpn.cipher, vpn.auth);
      if (vpn.auth === "static-key" && vpn.cipher === undefined) {
        r.warn(
          ["vpn"],
          "no vpn.cipher for openvpn static-key: OpenVPN then falls back to BF-CBC, which OpenSSL 3 refuses",
          "set vpn.cipher to the cipher the lab's server uses, e.g. AES-256-CBC",
        );
      }
      if (vpn.auth === "tls" && vpn.ca === undefined) {
        r.error(
          ["vpn"],
          "vpn.ca is required for openvpn tls",
          "add vpn.ca: the path of the lab's CA certificate on the runners, e.g. /etc/gen-lab/foo/ca.crt",
        );
      }
      if (vpn.auth === "static-key" && vpn.ca !== undefined) {
        r.error(
          ["vpn", "ca"],
          "vpn.ca is not used by openvpn static-key",
          "remove it, or set vpn.auth: tls",
          { key: true },
        );
      }
      break;
    case "wireguard":
      kind = "wireguard";
      required = ["private_key_file", "address"];
      // Optional (lab-format.md), but nothing else gives the tunnel a DNS server.
      if ((lab.intranet.nameservers ?? []).length === 0) {
        r.warn(
          ["intranet"],
          "no intranet.nameservers for wireguard: nothing pushes DNS over WireGuard, so the intranet's names will not resolve through the tunnel",
          "list the lab's DNS servers in intranet.nameservers",
        );
      }
      break;
    case "ipsec":
      kind = "ipsec";
      required = ["psk_file"];
      // NetworkManager-libreswan passes the ranges on as one rightsubnet=a,b: libreswan 5 reads
      // that as several traffic selectors, libreswan 4 refuses the connection ("bad subnet").
      if (lab.intranet.cidrs.length > 1)
        r.warn(
          ["intranet", "cidrs"],
          `an ipsec tunnel to ${lab.intranet.cidrs.length} intranet ranges needs libreswan 5 or later on the runners: libreswan 4 (RHEL 9, Debian 12) refuses a list in rightsubnet`,
          "make sure the runners' image has libreswan 5, or cover the intranet with one range",
        );
      if (vpn.ike !== undefined) {
        const problem = ikeProblem(vpn.ike);
        if (problem !== undefined)
          r.error(
            ["vpn", "ike"],
            `libreswan refuses this IKE proposal list: ${problem}`,
            "write the lab's proposal as libreswan takes it, <encryption>-<PRF>-<DH> (e.g. aes256-sha256-modp2048, aes_gcm256-sha2_256-dh19), or leave ike out for libreswan's defaults; `ipsec algparse -v2 ike=<proposal>` checks one",
          );
      }
      break;
  }
  const all: Field[] = [
    "port",
    "static_key",
    "key_direction",
    "local_ip",
    "remote_ip",
    "cert",
    "key",
    "private_key_file",
    "address",
    "psk_file",
  ];
  const allowed = new Set<Field>([
    ...required,
    ...(vpn.type === "ipsec" ? [] : (["port"] as Field[])),
    ...(kind === "openvpn static-key" ? (["key_direction"] as Field[]) : []),
  ]);

  const tunnelAddresses: {
    path: YamlPath;
    net: Net;
    /** WireGuard: the network NM routes through the tunnel, when it is more than the address. */
    route?: Net;
    runner: string;
  }[] = [];
  lab.runners.forEach((runner, i) => {
    const base: YamlPath = ["runners", i, "vpn"];
    for (const f of required) {
      if (runner.vpn[f] === undefined)
        r.error(
          base,
          `${f} is required for ${kind}`,
          fieldHint(f, lab.name, runner.name),
        );
    }
    for (const f of all) {
      if (!allowed.has(f) && runner.vpn[f] !== undefined) {
        r.error(
          [...base, f],
          `${f} is not used by ${kind}`,
          `remove it (fields for ${kind}: ${[...allowed].join(", ")})`,
          { key: true },
        );
      }
    }
    if (kind === "openvpn static-key") {
      for (const f of ["local_ip", "remote_ip"] as const) {
        const a = runner.vpn[f];
        if (a !== undefined)
          tunnelAddresses.push({
            path: [...base, f],
            net: hostNet(a),
            runner: runner.name,
          });
      }
      if (
        runner.vpn.local_ip !== undefined &&
        runner.vpn.local_ip === runner.vpn.remote_ip
      ) {
        r.error(
          [...base, "remote_ip"],
          "remote_ip equals local_ip",
          "the two ends of the tunnel need two addresses, e.g. 10.255.0.2 and 10.255.0.1",
        );
      }
    }
    if (vpn.type === "wireguard" && runner.vpn.address !== undefined) {
      const address = runner.vpn.address;
      const [addr] = address.split("/");
      const path: YamlPath = [...base, "address"];
      // NM adds the address's network as a route through the tunnel: a short prefix would take
      // the VPC, Docker's networks or the whole internet with it.
      const route = parseNet(networkOf(address));
      if (route.prefix < MIN_WIREGUARD_PREFIX)
        r.error(
          path,
          `${address} would route ${route.text} into the tunnel: its prefix is shorter than /${MIN_WIREGUARD_PREFIX}`,
          `write the runner's own address as /32, e.g. ${addr}/32 (the lab's routes come from intranet.cidrs); a tunnel network needs a prefix of /${MIN_WIREGUARD_PREFIX} or longer`,
        );
      const notHost = notAHost(addr!, route);
      if (notHost)
        r.error(
          path,
          `${addr} is ${notHost}, not an address a host can have`,
          `give the runner an address inside ${route.text}, or write it as /32`,
        );
      tunnelAddresses.push({
        path,
        net: hostNet(addr!),
        route:
          route.prefix >= MIN_WIREGUARD_PREFIX && route.prefix < 32
            ? route
            : undefined,
        runner: runner.name,
      });
    }
  });
  if (kind === "openvpn static-key") checkStaticKeyPorts(r, lab);
  pairwise(tunnelAddresses, (a, b) => {
    if (overlaps(a.net, b.net)) {
      r.error(
        b.path,
        `tunnel address ${b.net.text.replace("/32", "")} is also used at ${formatPath(a.path)}${a.runner !== b.runner ? ` (runner ${a.runner})` : ""}`,
        "every runner needs its own tunnel addresses",
      );
      return true;
    }
    return false;
  });
  const pickTunnel = `pick tunnel addresses outside the VPC and the intranet${freeTunnelRange(vpc, intranet)}`;
  for (const t of tunnelAddresses) {
    if (vpc && overlaps(t.net, vpc))
      r.error(
        t.path,
        `tunnel address ${t.net.text.replace("/32", "")} is inside the VPC ${vpc.text}`,
        pickTunnel,
      );
    else if (vpc && t.route && overlaps(t.route, vpc))
      r.error(
        t.path,
        `tunnel network ${t.route.text} overlaps the VPC ${vpc.text}: the runner would route VPC traffic into the tunnel`,
        `write the address as /32, e.g. ${t.net.text}, or pick a tunnel network outside the VPC`,
      );
    for (const i of intranet) {
      if (overlaps(t.net, i.net))
        r.error(
          t.path,
          `tunnel address ${t.net.text.replace("/32", "")} is inside the intranet ${i.net.text}`,
          pickTunnel,
        );
    }
    checkReservedRanges(
      r,
      t.path,
      t.route ?? t.net,
      t.route ? "tunnel network" : "tunnel address",
    );
  }
}

/**
 * A static-key OpenVPN server is point to point: one process, one port, one peer. Runners of a
 * lab all dial vpn.remote, so two of them on one port would take turns at the same server.
 */
function checkStaticKeyPorts(r: Reporter, lab: LabInput): void {
  const portOf = (i: number) =>
    lab.runners[i]!.vpn.port ?? DEFAULT_OPENVPN_PORT;
  const used = new Set(lab.runners.map((_, i) => portOf(i)));
  const firstOnPort = new Map<number, number>();
  lab.runners.forEach((runner, i) => {
    const port = portOf(i);
    const first = firstOnPort.get(port);
    if (first === undefined) {
      firstOnPort.set(port, i);
      return;
    }
    let free = DEFAULT_OPENVPN_PORT;
    while (used.has(free)) free++;
    used.add(free);
    const defaulted = runner.vpn.port === undefined;
    r.error(
      defaulted ? ["runners", i, "vpn"] : ["runners", i, "vpn", "port"],
      `port ${port}${defaulted ? " (the default, as vpn.port is not set)" : ""} on ${lab.vpn.remote} is also the port of runner ${lab.runners[first]!.name} (runners[${first}]): a static-key server port serves one peer`,
      `give each runner the port of its own OpenVPN server on ${lab.vpn.remote}, e.g. port: ${free}`,
    );
  });
}

/** The shortest prefix a runner's WireGuard address may have (see checkTunnels). */
const MIN_WIREGUARD_PREFIX = 16;

function fieldHint(field: string, lab: string, runner: string): string {
  const examples: Record<string, string> = {
    static_key: `static_key: /etc/gen-lab/${lab}/${runner}.key`,
    local_ip: "local_ip: 10.255.0.2",
    remote_ip: "remote_ip: 10.255.0.1",
    cert: `cert: /etc/gen-lab/${lab}/${runner}.crt`,
    key: `key: /etc/gen-lab/${lab}/${runner}.pem`,
    private_key_file: `private_key_file: /etc/gen-lab/${lab}/${runner}.wg`,
    address: "address: 10.255.0.2/32",
    psk_file: `psk_file: /etc/gen-lab/${lab}/${runner}.psk`,
  };
  return `add ${examples[field] ?? field}`;
}

/**
 * Credential paths of the lab, with where they were written: the lab's CA certificate (openvpn
 * tls, shared by its runners; `runner` undefined), then every runner's own files.
 */
export function credentialPaths(
  lab: LabInput,
): { path: YamlPath; file: string; runner: string | undefined }[] {
  const out: { path: YamlPath; file: string; runner: string | undefined }[] =
    [];
  if (
    lab.vpn.type === "openvpn" &&
    lab.vpn.auth === "tls" &&
    lab.vpn.ca !== undefined
  )
    out.push({ path: ["vpn", "ca"], file: lab.vpn.ca, runner: undefined });
  lab.runners.forEach((runner, i) => {
    for (const f of [
      "static_key",
      "cert",
      "key",
      "private_key_file",
      "psk_file",
    ] as const) {
      const file = runner.vpn[f];
      if (file !== undefined)
        out.push({ path: ["runners", i, "vpn", f], file, runner: runner.name });
    }
  });
  return out;
}

function checkCredentials(r: Reporter, lab: LabInput): void {
  pairwise(credentialPaths(lab), (a, b) => {
    if (a.file !== b.file) return false;
    if (a.runner === undefined)
      r.error(
        b.path,
        `${b.file} is also the lab's CA certificate (vpn.ca)`,
        "a runner's cert and key are its own and the CA certificate is the lab's: give them different files",
      );
    else
      r.error(
        b.path,
        `${b.file} is also used at ${formatPath(a.path)}${a.runner !== b.runner ? ` (runner ${a.runner})` : ""}`,
        "credentials are per runner (a static key admits one client at a time): give each runner its own file",
      );
    return true;
  });
}

function checkNoSecrets(
  r: Reporter,
  value: unknown,
  path: (string | number)[],
): void {
  if (typeof value === "string") {
    if (PEM_RE.test(value)) {
      r.error(
        path,
        "contains key or certificate material",
        "never put secrets in a lab file: give the path of the file on the runner instead",
      );
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkNoSecrets(r, v, [...path, i]));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (PEM_RE.test(k))
        r.error(
          [...path, k],
          "contains key or certificate material",
          "never put secrets in a lab file",
          { key: true },
        );
      checkNoSecrets(r, v, [...path, k]);
    }
  }
}

/** CST tokens whose text becomes data: checkNoSecrets looks at their values, escapes resolved. */
const VALUE_TOKENS: ReadonlySet<string> = new Set([
  "scalar",
  "single-quoted-scalar",
  "double-quoted-scalar",
  "block-scalar",
  "alias",
]);

/**
 * Key material in the text outside any value: a PEM block kept "for reference" in a comment is
 * as much a leak as one in a value. Each hit is reported at its own line.
 */
function checkNoSecretsInText(r: Reporter, text: string): void {
  // The common case costs one scan of the text; only a hit pays for the syntax tokens.
  if (!PEM_RE.test(text)) return;
  const lines = new LineCounter();
  const stack: unknown[] = [...new Parser(lines.addNewLine).parse(text)];
  while (stack.length > 0) {
    const token = stack.pop();
    if (token === null || typeof token !== "object") continue;
    // One push per item: spreading a list of 150,000 tokens overflows the call stack.
    if (Array.isArray(token)) {
      for (const item of token as unknown[]) stack.push(item);
      continue;
    }
    const { type, offset, source } = token as {
      type?: unknown;
      offset?: unknown;
      source?: unknown;
    };
    const hit =
      typeof type === "string" &&
      !VALUE_TOKENS.has(type) &&
      typeof source === "string"
        ? PEM_RE.exec(source)
        : null;
    if (hit && typeof offset === "number")
      r.errorAt(
        lines.linePos(offset + hit.index),
        `${type === "comment" ? "a comment" : "the YAML text"} contains key or certificate material (${hit[0]})`,
        "remove it: no key material belongs in a lab file, not even in a comment; the lab names key files on the runner instead",
      );
    // Scalars too: comments after a value, or in a block scalar's header, hang below them.
    for (const value of Object.values(token as object)) stack.push(value);
  }
}

/** `a.foo.example.com` is under `foo.example.com`, and so is `foo.example.com` itself. */
export function underDomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

function checkEgressAndNames(
  r: Reporter,
  lab: LabInput,
  intranet: readonly { path: YamlPath; net: Net }[],
): void {
  const domains = lab.intranet.domains;
  const underAny = (host: string) => domains.some((d) => underDomain(host, d));
  checkRoutingDomains(r, lab);
  const beakerHost = new URL(lab.beaker.url).hostname;
  if (!underAny(beakerHost)) {
    r.error(
      ["beaker", "url"],
      `host ${beakerHost} is not under intranet.domains (${domains.join(", ")})`,
      "Beaker is reached through the tunnel: add its domain to intranet.domains, or fix the URL",
    );
  }
  pairwise(
    domains.map((d, i) => ({ d, i })),
    (a, b) => {
      if (underDomain(a.d, b.d) || underDomain(b.d, a.d)) {
        r.error(
          ["intranet", "domains", b.i],
          `${b.d} overlaps ${a.d} (intranet.domains[${a.i}])`,
          "list a routing domain once; the parent domain already covers its subdomains",
        );
        return true;
      }
      return false;
    },
  );
  const ruleAt = new Map<string, number>();
  (lab.egress ?? []).forEach((e, i) => {
    // A rule or port given twice is harmless to iptables but a sign of a slip (a copy not
    // changed): a warning, at the repetition.
    const rule = `${e.to.toLowerCase()} ${e.protocol ?? "tcp"} ${[...e.ports].sort((a, b) => a - b).join(",")}`;
    const first = ruleAt.get(rule);
    if (first !== undefined)
      r.warn(
        ["egress", i],
        `egress[${i}] repeats egress[${first}]`,
        "remove the repetition, or change it to the destination it was meant for",
      );
    else ruleAt.set(rule, i);
    e.ports.forEach((port, j) => {
      const k = e.ports.indexOf(port);
      if (k < j)
        r.warn(
          ["egress", i, "ports", j],
          `port ${port} is listed twice (also ports[${k}])`,
          "remove the repetition",
        );
    });
    const path: YamlPath = ["egress", i, "to"];
    // The schema has checked the syntax: a strict IPv4 CIDR, or a DNS name.
    if (e.to.includes("/")) {
      if (!hostBitsZero(e.to)) {
        r.error(
          path,
          `${e.to} has host bits set`,
          `write the network address: ${networkOf(e.to)}`,
        );
        return;
      }
      const net = parseNet(e.to);
      if (!intranet.some((x) => contains(x.net, net))) {
        r.error(
          path,
          `${e.to} is not inside intranet.cidrs`,
          "egress only limits traffic into the intranet: use a range inside intranet.cidrs",
        );
      }
    } else if (!underAny(e.to)) {
      r.error(
        path,
        `host ${e.to} is not under intranet.domains (${domains.join(", ")})`,
        "name a host of the intranet, or a CIDR inside intranet.cidrs",
      );
    }
  });
  checkEgressReachesBeaker(r, lab);
}

/**
 * Every name under a routing domain goes to the lab's DNS, from the runners and the workers.
 * A top-level domain would take all of `com` or `internal` (EC2's own host names); a domain
 * above a host the pipeline or AWS needs would send its lookups through the lab.
 */
function checkRoutingDomains(r: Reporter, lab: LabInput): void {
  // [host, what needs it, whether AWS's own names: a top-level domain over those is an error]
  const needed: [string, string, boolean?][] = [
    [new URL(lab.pipeline.gitlab_url).hostname, "pipeline.gitlab_url"],
    ...lab.pipeline.triggers.flatMap((t, i): [string, string][] => {
      try {
        return [
          [new URL(t.git_url).hostname, `pipeline.triggers[${i}].git_url`],
        ];
      } catch {
        return []; // scp-like git URLs: their host is not looked up here
      }
    }),
    [`s3.${lab.aws.region}.amazonaws.com`, "S3 and ECR of the region", true],
    [
      lab.aws.region === "us-east-1"
        ? "ip-10-0-0-1.ec2.internal"
        : `ip-10-0-0-1.${lab.aws.region}.compute.internal`,
      "EC2's host names",
      true,
    ],
    // The runners' and workers' own reverse lookups (a runner's address stands for the VPC's).
    ...lab.runners
      .slice(0, 1)
      .map((runner): [string, string, boolean] => [
        `${runner.address.split(".").reverse().join(".")}.in-addr.arpa`,
        "reverse lookups of the VPC's addresses",
        true,
      ]),
  ];
  lab.intranet.domains.forEach((domain, i) => {
    const path: YamlPath = ["intranet", "domains", i];
    const hit = needed.find(([host]) => underDomain(host, domain));
    if (!domain.includes(".")) {
      // A private top-level domain (`corp`, `lab`) may really be the lab's, its GitLab
      // included; `com` or `internal` take AWS's own names, which no lab serves.
      const aws = needed.find(
        ([host, , own]) => own && underDomain(host, domain),
      );
      if (aws)
        r.error(
          path,
          `${domain} is a whole top-level domain: every name under it would go to the lab's DNS, ${aws[0]} (${aws[1]}) among them`,
          "list the lab's own domains, e.g. foo.example.com",
        );
      else
        r.warn(
          path,
          `${domain} is a whole top-level domain: every name under it goes to the lab's DNS`,
          `keep it only if the lab's names end in .${domain}; otherwise list the lab's own domains`,
        );
      return;
    }
    if (hit) {
      r.warn(
        path,
        `${domain} covers ${hit[0]} (${hit[1]}): its lookups would go to the lab's DNS`,
        "list only the lab's own domains",
      );
    }
  });
}

/**
 * The workers exist to reach Beaker: an allow-list that lets no connection through to
 * beaker.url's host and port is almost certainly a mistake (a warning: Beaker may be reached
 * another way). A CIDR rule with the port may cover Beaker's address, which is not known here.
 */
function checkEgressReachesBeaker(r: Reporter, lab: LabInput): void {
  if (lab.egress === undefined) return;
  const url = new URL(lab.beaker.url);
  const port = Number(url.port || (url.protocol === "http:" ? 80 : 443));
  const allows = (e: NonNullable<LabInput["egress"]>[number]) =>
    e.protocol === "tcp" &&
    e.ports.includes(port) &&
    (e.to.includes("/") || e.to === url.hostname);
  if (lab.egress.some(allows)) return;
  r.warn(
    ["egress"],
    `no rule lets the workers reach Beaker (${url.hostname}, tcp port ${port}, from beaker.url)`,
    `add { to: ${url.hostname}, ports: [${port}] } to egress, or the CIDR of Beaker's address with port ${port}`,
  );
}

/**
 * The data-channel ciphers of OpenVPN 2.6 with OpenSSL 3 (`openvpn --show-ciphers`, Debian 12):
 * in static-key mode OpenVPN takes only the CBC ones; the others ("TLS client/server mode
 * only") need a TLS control channel. Names are matched without regard to case, as OpenSSL does.
 */
const OPENVPN_CBC = new Set([
  ...["AES", "ARIA", "CAMELLIA"].flatMap((c) =>
    ["128", "192", "256"].map((bits) => `${c}-${bits}-CBC`),
  ),
  "SM4-CBC",
  "DES-EDE-CBC",
  "DES-EDE3-CBC",
]);
const OPENVPN_TLS_ONLY = new Set([
  ...["AES", "ARIA", "CAMELLIA"].flatMap((c) =>
    ["128", "192", "256"].flatMap((bits) =>
      ["CFB", "CFB1", "CFB8", "OFB", ...(c === "CAMELLIA" ? [] : ["GCM"])].map(
        (mode) => `${c}-${bits}-${mode}`,
      ),
    ),
  ),
  "CHACHA20-POLY1305",
  "SM4-CFB",
  "SM4-OFB",
  "DES-EDE-CFB",
  "DES-EDE-OFB",
  "DES-EDE3-CFB",
  "DES-EDE3-CFB1",
  "DES-EDE3-CFB8",
  "DES-EDE3-OFB",
]);

/** OpenSSL's other names of those ciphers (`openssl list -cipher-algorithms`), upper case. */
const OPENSSL_ALIASES: ReadonlyMap<string, string> = new Map([
  ...["AES", "ARIA", "CAMELLIA"].flatMap((c) =>
    ["128", "192", "256"].map((bits): [string, string] => [
      `${c}${bits}`,
      `${c}-${bits}-CBC`,
    ]),
  ),
  ...["128", "192", "256"].map((bits): [string, string] => [
    `ID-AES${bits}-GCM`,
    `AES-${bits}-GCM`,
  ]),
  ["DES3", "DES-EDE3-CBC"],
  ["SM4", "SM4-CBC"],
  ["BF", "BF-CBC"],
  ["BLOWFISH", "BF-CBC"],
]);

function checkCipher(
  r: Reporter,
  cipher: string,
  auth: "static-key" | "tls",
): void {
  const path: YamlPath = ["vpn", "cipher"];
  const upper = cipher.toUpperCase();
  const name = OPENSSL_ALIASES.get(upper) ?? upper;
  if (name === "NONE") {
    r.warn(
      path,
      "cipher none: the tunnel would carry the intranet's traffic unencrypted",
      "set the cipher the lab's server uses, e.g. AES-256-CBC",
    );
    return;
  }
  if (name === "BF-CBC") {
    r.error(
      path,
      "BF-CBC is refused by OpenVPN with OpenSSL 3 (it needs OpenSSL's legacy provider)",
      "use the cipher the lab's server is moved to, e.g. AES-256-CBC",
    );
    return;
  }
  const cbc = OPENVPN_CBC.has(name);
  if (!cbc && !OPENVPN_TLS_ONLY.has(name)) {
    r.error(
      path,
      `${cipher} is not a cipher OpenVPN knows`,
      "write one `openvpn --show-ciphers` lists, e.g. AES-256-CBC",
    );
    return;
  }
  if (auth === "static-key" && !cbc) {
    r.error(
      path,
      `${cipher} works only with a TLS control channel; OpenVPN refuses it with a static key`,
      "use a CBC cipher for static-key, e.g. AES-256-CBC",
    );
    return;
  }
  if (name.startsWith("DES-")) {
    r.warn(
      path,
      `${cipher} has 64-bit blocks, deprecated by OpenVPN (a long-lived tunnel is open to SWEET32)`,
      "move the lab's server to AES-256-CBC (or AES-256-GCM with TLS)",
    );
  }
}

/** S3 bucket rules that the generated name must obey (AWS "general purpose bucket naming rules"). */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63)
    return `is ${name.length} characters; S3 allows 3 to 63`;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return "must be lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit";
  if (name.includes("..")) return "must not contain two adjacent dots";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name))
    return "must not look like an IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name))
    return "must not start with xn--, sthree- or amzn-s3-demo-";
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name))
    return "must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3";
  return undefined;
}

function checkBucketsAndPipeline(r: Reporter, lab: LabInput): void {
  const seen = new Map<string, number>();
  lab.aws.buckets.forEach((purpose, i) => {
    const path: YamlPath = ["aws", "buckets", i];
    const name = bucketName(lab, purpose);
    const problem = bucketNameProblem(name);
    if (problem)
      r.error(
        path,
        `bucket name ${name} ${problem}`,
        // The name is <prefix>-<environment>-<lab>-<purpose>: its start is the prefix's, its
        // end the purpose's.
        /must not start/.test(problem)
          ? "change the prefix: S3 keeps names starting like this for itself"
          : /must not end/.test(problem)
            ? "change the bucket purpose: S3 keeps names ending like this for itself"
            : /characters/.test(problem)
              ? "shorten the prefix, environment, lab name or bucket purpose"
              : "change the prefix, environment, lab name or bucket purpose",
      );
    const before = seen.get(purpose);
    if (before !== undefined)
      r.error(
        path,
        `bucket ${purpose} is listed twice (aws.buckets[${before}])`,
        "list each bucket purpose once",
      );
    else seen.set(purpose, i);
  });

  const schedule = checkSchedule(lab.pipeline.schedule);
  if (schedule)
    r.error(
      ["pipeline", "schedule"],
      `${JSON.stringify(lab.pipeline.schedule)} ${schedule.message}`,
      schedule.hint,
    );

  const triggers = new Map<string, number>();
  lab.pipeline.triggers.forEach((t, i) => {
    const before = triggers.get(t.name);
    if (before !== undefined)
      r.error(
        ["pipeline", "triggers", i, "name"],
        `trigger ${t.name} is already defined at pipeline.triggers[${before}]`,
        "give each trigger a unique name",
      );
    else triggers.set(t.name, i);
    // extra is merged flat into the trigger's gitrepo-trigger entry: it must not replace what
    // the trigger sets itself. (gitrepo-trigger's own dotted keys, like .extends, are no
    // variable names: the schema refuses them.)
    for (const key of Object.keys(t.extra ?? {})) {
      if (TRIGGER_OWN_KEYS.includes(key) || TRIGGER_SHARED_KEYS.has(key))
        r.error(
          ["pipeline", "triggers", i, "extra", key],
          `extra key ${JSON.stringify(key)} is not a pipeline variable gen-lab can pass through`,
          TRIGGER_SHARED_KEYS.has(key)
            ? `gen-lab writes ${key} for every trigger from ${TRIGGER_SHARED_KEYS.get(key)}: set it there`
            : `set ${key} on the trigger itself, not in extra`,
          { key: true },
        );
    }
  });

  // The runners' security group is named <prefix>.<environment>.sg.<lab>-runners, and AWS
  // rejects security group names starting with sg-.
  if (lab.prefix.startsWith("sg-"))
    r.error(
      ["prefix"],
      `prefix ${lab.prefix} makes the runners' security group name start with sg-, which AWS rejects`,
      "choose a prefix that does not start with sg-",
    );
}

/** Keys of a gitrepo-trigger entry that each trigger sets from its own fields. */
const TRIGGER_OWN_KEYS: readonly string[] = ["git_url", "branch"];

/**
 * Keys gen-lab writes into the `.default` entry every trigger inherits, with the lab field
 * each comes from: an `extra` key of the same name would override it unchecked.
 */
const TRIGGER_SHARED_KEYS: ReadonlyMap<string, string> = new Map([
  ["cki_pipeline_project", "pipeline.project"],
  ["gitlab_url", "pipeline.gitlab_url"],
  ["runner_tags", "pipeline.runner_tags"],
]);

/**
 * Each item against every one before it. When `f` returns true (it reported a clash), the item
 * is done: a list of 1,000 equal entries gets 999 messages, not half a million.
 */
function pairwise<T>(
  items: readonly T[],
  f: (a: T, b: T) => boolean | void,
): void {
  for (let j = 1; j < items.length; j++)
    for (let i = 0; i < j; i++) if (f(items[i]!, items[j]!) === true) break;
}

/** One lab of a set, for the cross-lab rules. */
export interface CheckedLab {
  readonly source: LabSource;
  readonly input: LabInput;
}

/** The rules of lab-format.md, "Across several labs given together". Each conflict is reported on the later lab, naming the earlier one. */
export function checkLabSet(labs: readonly CheckedLab[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const reporters = new Map(labs.map((l) => [l, new Reporter(l.source)]));

  // Names and credential paths must be unique across all labs: index them, so a large set
  // costs one pass, not a comparison of every pair.
  const names = new Map<string, CheckedLab>();
  const credentials = new Map<string, { lab: CheckedLab; path: YamlPath }>();
  const buckets = new Map<string, { lab: CheckedLab; path: YamlPath }>();
  // Labs may share a runner host, so what gen-lab names on a host must differ between labs.
  // Most such names hold the whole lab name; the WireGuard interface is cut to the kernel's
  // 15 characters, so two long lab names can meet there.
  const interfaces = new Map<string, CheckedLab>();
  for (const lab of labs) {
    const r = reporters.get(lab)!;
    const first = names.get(lab.input.name);
    if (first) {
      r.error(
        ["name"],
        `lab name ${lab.input.name} is also used by ${reporters.get(first)!.where(["name"])}`,
        "lab names must be unique: they name AWS resources, NM connections and output directories",
      );
    } else names.set(lab.input.name, lab);
    for (const c of credentialPaths(lab.input)) {
      const seen = credentials.get(c.file);
      if (seen && seen.lab !== lab) {
        r.error(
          c.path,
          `${c.file} is also used by ${reporters.get(seen.lab)!.where(seen.path)}`,
          c.runner === undefined
            ? `credentials are per lab and runner: give each lab's CA certificate its own file, e.g. vpn.ca: /etc/gen-lab/${lab.input.name}/ca.crt`
            : "credentials are per runner: give each runner of each lab its own file",
        );
      } else if (!seen) credentials.set(c.file, { lab, path: c.path });
    }
    // A lab whose name is taken would only repeat that error below.
    if (first) continue;
    // S3 bucket names are global: <prefix>-<environment>-<lab>-<purpose> of two labs can meet
    // when the hyphens fall differently.
    lab.input.aws.buckets.forEach((purpose, i) => {
      const name = bucketName(lab.input, purpose);
      const path: YamlPath = ["aws", "buckets", i];
      const seen = buckets.get(name);
      if (seen && seen.lab !== lab)
        r.error(
          path,
          `bucket name ${name} is also made by ${reporters.get(seen.lab)!.where(seen.path)}`,
          "S3 bucket names are global: change the prefix, environment or bucket purpose of one lab",
        );
      else if (!seen) buckets.set(name, { lab, path });
    });
    if (lab.input.vpn.type === "wireguard") {
      const device = wireguardInterface(resolveLab(lab.input, lab.source.file));
      const seen = interfaces.get(device);
      if (seen)
        r.error(
          ["name"],
          `lab name ${lab.input.name} gives the WireGuard interface ${device}, as lab ${seen.input.name} does (${reporters.get(seen)!.where(["name"])})`,
          "interface names are cut to 15 characters (wg- and the first 12 of the lab name), and labs may share a runner host: make the lab names differ within their first 12 characters",
        );
      else interfaces.set(device, lab);
    }
  }

  checkRunnerTags(labs, reporters);

  // Address ranges and routing domains only collide within one VPC.
  const byVpc = new Map<string, CheckedLab[]>();
  for (const lab of labs) {
    const key = `${lab.input.aws.region}/${lab.input.aws.vpc_id}`;
    byVpc.set(key, [...(byVpc.get(key) ?? []), lab]);
  }
  for (const group of byVpc.values()) {
    // One VPC has one CIDR here: every rule that keeps tunnels and intranets out of the VPC
    // assumes the labs agree on it.
    const first = group[0]!;
    for (const lab of group.slice(1)) {
      if (lab.input.aws.vpc_cidr !== first.input.aws.vpc_cidr)
        reporters
          .get(lab)!
          .error(
            ["aws", "vpc_cidr"],
            `VPC ${lab.input.aws.vpc_id} has vpc_cidr ${first.input.aws.vpc_cidr} in lab ${first.input.name} (${reporters.get(first)!.where(["aws", "vpc_cidr"])})`,
            "labs sharing a VPC must declare its same CIDR: fix aws.vpc_cidr or aws.vpc_id",
          );
    }
    checkSharedVpc(group, reporters);
  }
  for (const r of reporters.values()) for (const d of r.list) out.push(d);
  return out;
}

/** The GitLab instance of a URL: its host and path, whatever the scheme or a trailing slash. */
function gitlabInstance(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname.replace(/\/+$/, "")}`;
}

/**
 * Labs on one GitLab instance: GitLab gives a job to any runner that has all of the job's tags,
 * so when every tag of one lab is also a tag of another lab, the other lab's runners take its
 * jobs and run them against the wrong intranet. Each lab's tags are looked up by the rarest of
 * them, so a thousand labs with tags of their own cost one pass.
 */
function checkRunnerTags(
  labs: readonly CheckedLab[],
  reporters: ReadonlyMap<CheckedLab, Reporter>,
): void {
  const instances = labs.map((l) =>
    gitlabInstance(l.input.pipeline.gitlab_url),
  );
  const tags = labs.map(
    (l) => new Set(l.input.pipeline.runner_tags ?? [l.input.name]),
  );
  const withTag = new Map<string, number[]>();
  labs.forEach((_, i) => {
    for (const t of tags[i]!) {
      const key = `${instances[i]} ${t}`;
      const list = withTag.get(key);
      if (list) list.push(i);
      else withTag.set(key, [i]);
    }
  });
  const tagsPath = (i: number): YamlPath =>
    labs[i]!.input.pipeline.runner_tags
      ? ["pipeline", "runner_tags"]
      : ["pipeline"];
  const tagText = (i: number): string =>
    `[${[...tags[i]!].join(", ")}]${labs[i]!.input.pipeline.runner_tags ? "" : " (the default: the lab name)"}`;
  /** A tag for lab i that no lab on its GitLab has: its name if free, else a variant of it. */
  const unusedTag = (i: number): string => {
    const name = labs[i]!.input.name;
    const free = (t: string) => !withTag.has(`${instances[i]} ${t}`);
    for (const t of [name, `${name}-lab`, `lab-${name}`, `${name}-runners`])
      if (free(t)) return t;
    for (let n = 2; ; n++) if (free(`${name}-${n}`)) return `${name}-${n}`;
  };
  // Each lab is reported once, against the first lab it clashes with.
  const reported = new Set<number>();
  labs.forEach((_, i) => {
    let rarest: number[] = [];
    for (const t of tags[i]!) {
      const list = withTag.get(`${instances[i]} ${t}`)!;
      if (rarest.length === 0 || list.length < rarest.length) rarest = list;
    }
    // Every lab here has i's rarest tag; those with all of i's tags would run i's jobs.
    for (const j of rarest) {
      if (j === i || reported.has(Math.max(i, j))) continue;
      if (![...tags[i]!].every((t) => tags[j]!.has(t))) continue;
      const [early, late] = i < j ? [i, j] : [j, i];
      reported.add(late);
      const same = tags[i]!.size === tags[j]!.size;
      const other = labs[early]!.input.name;
      const where = reporters.get(labs[early]!)!.where(tagsPath(early));
      const host = instances[i]!;
      reporters
        .get(labs[late]!)!
        .error(
          tagsPath(late),
          same
            ? `runner tags ${tagText(late)} are also the runner tags of lab ${other} (${where}) on ${host}: each lab's jobs could run on the other lab's runners, which reach only their own intranet`
            : late === i
              ? `runner tags ${tagText(late)} are all tags of lab ${other}'s runners (${tagText(early)} at ${where}) on ${host}: GitLab could run this lab's jobs on them, which reach only lab ${other}'s intranet`
              : `runner tags ${tagText(late)} include every tag of lab ${other} (${tagText(early)} at ${where}) on ${host}: GitLab could run lab ${other}'s jobs on this lab's runners, which reach only this lab's intranet`,
          same
            ? `give each lab on one GitLab a tag of its own, e.g. runner_tags: [${unusedTag(late)}]`
            : late === i
              ? `give this lab a tag no other lab's runners have, e.g. add ${unusedTag(late)} to runner_tags`
              : `leave lab ${other}'s tags off this lab's runners, e.g. runner_tags: [${[...tags[late]!].filter((t) => !tags[early]!.has(t)).join(", ")}]`,
        );
    }
  });
}

/** A range of a lab that must not meet the ranges of another lab in the same VPC. */
interface SharedRange {
  readonly lab: CheckedLab;
  /** The lab's place in the group: of two labs, the later one gets the error. */
  readonly order: number;
  readonly path: YamlPath;
  readonly net: Net;
  readonly what: "intranet CIDR" | "subnet" | "tunnel address";
}

function rangesOf(lab: CheckedLab, order: number): SharedRange[] {
  const input = lab.input;
  const list: SharedRange[] = [];
  const add = (path: YamlPath, net: Net, what: SharedRange["what"]) =>
    list.push({ lab, order, path, net, what });
  input.intranet.cidrs.forEach(
    (c, i) =>
      hostBitsZero(c) &&
      add(["intranet", "cidrs", i], parseNet(c), "intranet CIDR"),
  );
  for (const [zone, z] of Object.entries(input.aws.zones))
    for (const key of ["runner_subnet", "worker_subnet"] as const)
      if (hostBitsZero(z[key]))
        add(["aws", "zones", zone, key], parseNet(z[key]), "subnet");
  input.runners.forEach((runner, i) => {
    if (input.vpn.type === "openvpn" && input.vpn.auth === "static-key")
      for (const f of ["local_ip", "remote_ip"] as const) {
        const v = runner.vpn[f];
        if (v !== undefined)
          add(["runners", i, "vpn", f], hostNet(v), "tunnel address");
      }
    if (runner.vpn.address !== undefined && input.vpn.type === "wireguard")
      add(
        ["runners", i, "vpn", "address"],
        hostNet(runner.vpn.address.split("/")[0]!),
        "tunnel address",
      );
  });
  return list;
}

/**
 * Labs in one VPC: their subnets, intranet ranges and tunnel addresses may not meet, nor their
 * routing domains. Ranges are swept in address order and domains looked up by their parent
 * domains, so a thousand labs in one VPC cost about what one pass over them does, not a
 * comparison of every pair of labs.
 */
function checkSharedVpc(
  group: readonly CheckedLab[],
  reporters: ReadonlyMap<CheckedLab, Reporter>,
): void {
  const ranges = group
    .flatMap((lab, order) => rangesOf(lab, order))
    .sort((x, y) => x.net.first - y.net.first || y.net.last - x.net.last);
  const open: SharedRange[] = [];
  for (const next of ranges) {
    // Ranges that end before this one starts meet no later one either.
    for (let i = open.length - 1; i >= 0; i--)
      if (open[i]!.net.last < next.net.first) open.splice(i, 1);
    for (const other of open)
      if (other.lab !== next.lab)
        reportSharedRange(
          ...(other.order < next.order
            ? ([other, next] as const)
            : ([next, other] as const)),
          reporters,
        );
    open.push(next);
  }

  const byDomain = new Map<string, { order: number; i: number }[]>();
  group.forEach((lab, order) =>
    lab.input.intranet.domains.forEach((d, i) => {
      const list = byDomain.get(d) ?? [];
      list.push({ order, i });
      byDomain.set(d, list);
    }),
  );
  group.forEach((lab, order) =>
    lab.input.intranet.domains.forEach((d, i) => {
      // This domain and each domain above it: another lab's entry there overlaps it.
      for (let at = d; ;) {
        for (const other of byDomain.get(at) ?? []) {
          // Equal domains meet from both sides: count them from the later lab's only.
          if (other.order === order || (at === d && other.order > order))
            continue;
          const [a, b] =
            other.order < order
              ? [
                  { order: other.order, i: other.i },
                  { order, i },
                ]
              : [
                  { order, i },
                  { order: other.order, i: other.i },
                ];
          const labA = group[a.order]!;
          const labB = group[b.order]!;
          const db = labB.input.intranet.domains[b.i]!;
          const da = labA.input.intranet.domains[a.i]!;
          reporters
            .get(labB)!
            .error(
              ["intranet", "domains", b.i],
              `routing domain ${db} overlaps ${da} of lab ${labA.input.name} at ${reporters.get(labA)!.where(["intranet", "domains", a.i])} (same VPC)`,
              "systemd-resolved would send one lab's names to the other lab's servers: keep routing domains disjoint",
            );
        }
        const dot = at.indexOf(".");
        if (dot < 0) break;
        at = at.slice(dot + 1);
      }
    }),
  );
}

/** One clash of two labs' ranges, reported on the later lab (`x`) against the earlier (`y`). */
function reportSharedRange(
  y: SharedRange,
  x: SharedRange,
  reporters: ReadonlyMap<CheckedLab, Reporter>,
): void {
  const r = reporters.get(x.lab)!;
  const ra = reporters.get(y.lab)!;
  const a = y.lab.input;
  const vpcId = x.lab.input.aws.vpc_id;
  // A single address (a tunnel address) is shown without its /32.
  const shown = (n: Net) => n.text.replace(/\/32$/, "");
  if (x.what === y.what && overlaps(x.net, y.net)) {
    r.error(
      x.path,
      `${x.what} ${shown(x.net)} overlaps ${shown(y.net)} of lab ${a.name} at ${ra.where(y.path)} (same VPC ${vpcId})`,
      `labs sharing a VPC need disjoint ${x.what === "subnet" ? "subnets" : x.what === "intranet CIDR" ? "intranet ranges (their routes would collide)" : "tunnel addresses"}`,
    );
  } else if (
    x.what === "tunnel address" &&
    y.what === "intranet CIDR" &&
    contains(y.net, x.net)
  ) {
    r.error(
      x.path,
      `tunnel address ${shown(x.net)} lies inside intranet CIDR ${y.net.text} of lab ${a.name} at ${ra.where(y.path)} (same VPC ${vpcId})`,
      `on a runner host both labs share, ${a.name}'s intranet route would take this tunnel's traffic: pick tunnel addresses outside every lab's intranet`,
    );
  } else if (
    x.what === "intranet CIDR" &&
    y.what === "tunnel address" &&
    contains(x.net, y.net)
  ) {
    r.error(
      x.path,
      `intranet CIDR ${x.net.text} contains tunnel address ${shown(y.net)} of lab ${a.name} at ${ra.where(y.path)} (same VPC ${vpcId})`,
      `on a runner host both labs share, this route would take ${a.name}'s tunnel traffic: the labs' intranet ranges and tunnel addresses must not meet`,
    );
  }
}
