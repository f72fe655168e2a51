import type { Diagnostic } from "../diagnostics.js";
import {
  bucketName,
  credentialFiles,
  DEFAULT_OPENVPN_PORT,
  defaultParameter,
} from "../model.js";
import {
  addressAt,
  awsReservedAddresses,
  contains,
  containsAddress,
  hostBitsZero,
  hostNet,
  networkOf,
  overlaps,
  parseNet,
  type Net,
} from "../net.js";
import type { LabSource, YamlPath } from "../parse.js";
import { BRANCH_RE, type LabInput } from "../schema.js";
import { formatPath, pairwise, Reporter } from "./report.js";

interface Range {
  readonly path: YamlPath;
  readonly net: Net;
}

/**
 * Present on every runner and worker (Docker's default bridge, link-local with AWS's metadata
 * and DNS), or routed by no host at all: a range meeting one of these breaks routing.
 */
const FORBIDDEN: readonly { net: Net; why: string }[] = [
  ["0.0.0.0/8", '"this network", no destination address'],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local (AWS metadata and DNS)"],
  ["172.17.0.0/16", "Docker's default bridge (docker0)"],
  ["224.0.0.0/3", "multicast and reserved addresses"],
].map(([cidr, why]) => ({ net: parseNet(cidr!), why: why! }));

/** Docker's other default address pools: an overlap bites only once such a network is made. */
const DOCKER_POOLS: readonly Net[] = [
  ...Array.from({ length: 14 }, (_, i) => parseNet(`172.${18 + i}.0.0/16`)),
  parseNet("192.168.0.0/16"),
];

/** The per-runner `vpn` fields each tunnel kind requires; any other (but `port`) is refused. */
const RUNNER_FIELDS = {
  "openvpn static-key": [
    "static_key",
    "local_ip",
    "remote_ip",
    "key_direction",
  ],
  "openvpn tls": ["cert", "key"],
  wireguard: ["private_key_file", "address"],
  ipsec: ["psk_file"],
} as const;
type RunnerField = keyof LabInput["runners"][number]["vpn"];

/** AWS keeps a quota of 50 routes per route table (1,000 at most): one per intranet range plus the default. */
const ROUTES_QUOTA = 50;

/** Every rule of lab-format.md within one lab, on input that passed the shape check. */
export function checkLab(source: LabSource, lab: LabInput): Diagnostic[] {
  const r = new Reporter(source);
  const cidr = (path: YamlPath, text: string): Net => {
    if (!hostBitsZero(text))
      r.error(
        path,
        `${text} has host bits set`,
        `write the network address: ${networkOf(text)}`,
      );
    return parseNet(networkOf(text));
  };

  // The VPC and its subnets.
  const vpc = cidr(["aws", "vpc_cidr"], lab.aws.vpc_cidr);
  checkAwsPrefix(r, ["aws", "vpc_cidr"], vpc);
  checkReserved(r, { path: ["aws", "vpc_cidr"], net: vpc }, "VPC CIDR", false);
  const subnets: Range[] = [];
  for (const [zone, z] of Object.entries(lab.aws.zones)) {
    if (zone.slice(0, -1) !== lab.aws.region)
      r.error(
        ["aws", "zones", zone],
        `zone ${zone} is not in region ${lab.aws.region}`,
        `an availability zone is its region and one letter, e.g. ${lab.aws.region}a`,
        { key: true },
      );
    for (const key of ["runner_subnet", "worker_subnet"] as const) {
      const path = ["aws", "zones", zone, key];
      const net = cidr(path, z[key]);
      checkAwsPrefix(r, path, net);
      if (!contains(vpc, net))
        r.error(
          path,
          `${z[key]} is not inside the VPC ${lab.aws.vpc_cidr}`,
          `pick a subnet of ${lab.aws.vpc_cidr}, or fix aws.vpc_cidr`,
        );
      subnets.push({ path, net });
    }
  }
  checkOverlaps(
    r,
    subnets,
    "give every subnet of the lab its own address range",
  );

  // The intranet.
  const intranet: Range[] = lab.intranet.cidrs.map((c, i) => ({
    path: ["intranet", "cidrs", i],
    net: cidr(["intranet", "cidrs", i], c),
  }));
  for (const i of intranet) {
    if (overlaps(i.net, vpc))
      r.error(
        i.path,
        `${i.net.text} overlaps the VPC ${lab.aws.vpc_cidr}`,
        "the intranet must be routable from the VPC: a lab range inside the VPC cannot be routed to the runner",
      );
    checkReserved(r, i, "intranet CIDR", true);
  }
  checkOverlaps(
    r,
    intranet,
    "list each intranet range once; merge or remove the overlapping one",
  );
  if (lab.intranet.cidrs.length + 1 > ROUTES_QUOTA)
    r.warn(
      ["intranet", "cidrs"],
      `${lab.intranet.cidrs.length} intranet ranges make more routes per worker route table than AWS's default quota (${ROUTES_QUOTA})`,
      "raise the account's 'Routes per route table' quota before terraform apply, or merge adjacent ranges",
    );
  const inIntranet = (address: string) =>
    intranet.some((i) => containsAddress(i.net, address));
  (lab.intranet.nameservers ?? []).forEach((ns, i) => {
    if (!inIntranet(ns))
      r.error(
        ["intranet", "nameservers", i],
        `${ns} is not inside intranet.cidrs`,
        "the nameservers are reached through the tunnel: use an address in the intranet, or add its range to intranet.cidrs",
      );
  });

  checkRunners(r, lab);
  checkTunnels(r, lab, vpc, intranet);
  pairwise(credentialPaths(lab), (a, b) => {
    if (a.file !== b.file) return false;
    r.error(
      b.path,
      `${b.file} is also used at ${formatPath(a.path)}`,
      "credentials are per runner (a static key admits one client at a time): give each runner its own file",
    );
    return true;
  });
  checkNames(r, lab, intranet);
  checkVpnRemote(r, lab, intranet);
  checkPipeline(r, lab);
  checkWorkers(r, lab, subnets);
  return r.list;
}

/** Ranges of one kind that must not meet: each overlap is reported on the later one. */
function checkOverlaps(
  r: Reporter,
  ranges: readonly Range[],
  hint: string,
): void {
  pairwise(ranges, (a, b) => {
    if (!overlaps(a.net, b.net)) return false;
    r.error(
      b.path,
      `${b.net.text} overlaps ${a.net.text} (${formatPath(a.path)})`,
      hint,
    );
    return true;
  });
}

/** AWS takes /16 to /28 for a VPC's and a subnet's CIDR block. */
function checkAwsPrefix(r: Reporter, path: YamlPath, net: Net): void {
  if (net.prefix >= 16 && net.prefix <= 28) return;
  r.error(
    path,
    `${net.text} is ${net.prefix < 16 ? "larger" : "smaller"} than AWS allows (a VPC's or subnet's CIDR block is /16 to /28)`,
    "pick a /16 to /28 network (a runner subnet needs at least a /28, workers more)",
  );
}

function checkReserved(
  r: Reporter,
  range: Range,
  what: string,
  tunnel: boolean,
): void {
  const shown =
    range.net.prefix === 32 ? range.net.text.slice(0, -3) : range.net.text;
  for (const f of FORBIDDEN)
    if (overlaps(range.net, f.net))
      r.error(
        range.path,
        `${what} ${shown} overlaps ${f.net.text}, ${f.why}`,
        "every runner and worker has this range for itself: traffic to it never reaches the tunnel; choose another range",
      );
  // Docker skips a pool that overlaps a route of the host, which the VPC is: no warning there.
  const pool = DOCKER_POOLS.find((p) => overlaps(range.net, p));
  if (pool && tunnel)
    r.warn(
      range.path,
      `${what} ${shown} overlaps Docker's default address pool ${pool.text}`,
      "a Docker network made from that pool on a runner or worker would shadow this route; set Docker's default-address-pools to avoid it",
    );
}

/** Exactly one runner per zone, unique names, an address inside the zone's runner subnet that AWS does not keep. */
function checkRunners(r: Reporter, lab: LabInput): void {
  const zones = Object.keys(lab.aws.zones);
  lab.runners.forEach((runner, i) => {
    const first = lab.runners.findIndex((x) => x.name === runner.name);
    if (first < i)
      r.error(
        ["runners", i, "name"],
        `runner name ${runner.name} is already used by runners[${first}]`,
        "give each runner a unique name",
      );
    const zone = Object.hasOwn(lab.aws.zones, runner.zone)
      ? lab.aws.zones[runner.zone]
      : undefined;
    if (!zone) {
      r.error(
        ["runners", i, "zone"],
        `zone ${JSON.stringify(runner.zone)} is not in aws.zones`,
        `use one of: ${zones.join(", ")}`,
      );
      return;
    }
    const other = lab.runners.findIndex((x) => x.zone === runner.zone);
    if (other < i)
      r.error(
        ["runners", i, "zone"],
        `zone ${runner.zone} already has runner ${lab.runners[other]!.name} (runners[${other}])`,
        "each zone has exactly one runner, its route target: move this runner to another zone",
      );
    const subnet = parseNet(networkOf(zone.runner_subnet));
    const path = ["runners", i, "address"];
    if (!containsAddress(subnet, runner.address))
      r.error(
        path,
        `${runner.address} is not in ${runner.zone}'s runner_subnet ${zone.runner_subnet}`,
        `pick an address in ${zone.runner_subnet}`,
      );
    else if (awsReservedAddresses(subnet).includes(runner.address))
      r.error(
        path,
        `${runner.address} is reserved by AWS in ${zone.runner_subnet} (the first four and the last address are)`,
        `pick .${addressAt(subnet, 4).split(".")[3]}-.${addressAt(subnet, -2).split(".")[3]}`,
      );
  });
  for (const zone of zones)
    if (!lab.runners.some((x) => x.zone === zone))
      r.error(
        ["aws", "zones", zone],
        `zone ${zone} has no runner`,
        "add one runner for this zone (its workers route the intranet through it), or remove the zone",
        { key: true },
      );
}

/** The kind of tunnel, as RUNNER_FIELDS names it. */
function tunnelKind(lab: LabInput): keyof typeof RUNNER_FIELDS {
  return lab.vpn.type === "openvpn" ? `openvpn ${lab.vpn.auth}` : lab.vpn.type;
}

/** Per tunnel type: lab-wide settings, per-runner fields, and tunnel addresses clear of every other range. */
function checkTunnels(
  r: Reporter,
  lab: LabInput,
  vpc: Net,
  intranet: readonly Range[],
): void {
  const vpn = lab.vpn;
  const kind = tunnelKind(lab);
  const nameservers = lab.intranet.nameservers ?? [];
  if (vpn.type === "openvpn") {
    if (vpn.auth === "static-key") {
      r.warn(
        ["vpn", "auth"],
        "OpenVPN 2.7 refuses static-key mode unless given --allow-deprecated-insecure-static-crypto, which NetworkManager-openvpn does not pass: on a runner with OpenVPN 2.7 or later the tunnel keeper reports this and the tunnel stays down",
        "move the lab to TLS (vpn.auth: tls, with the lab's CA and a certificate per runner), or run the runners on an image with OpenVPN 2.6",
      );
      if (nameservers.length === 0)
        r.error(
          ["intranet"],
          "intranet.nameservers is required for openvpn static-key",
          "a static-key tunnel has no control channel, so nothing pushes nameservers: list the lab's DNS servers",
        );
      if (vpn.ca !== undefined)
        r.error(
          ["vpn", "ca"],
          "vpn.ca is not used by openvpn static-key",
          "remove it, or set vpn.auth: tls",
          { key: true },
        );
      // Static-key mode has no cipher negotiation and no AEAD: OpenVPN refuses GCM, ChaCha20, CFB and OFB there.
      if (vpn.cipher !== undefined && /GCM|POLY1305|CFB|OFB/i.test(vpn.cipher))
        r.error(
          ["vpn", "cipher"],
          `${vpn.cipher} works only with a TLS control channel; OpenVPN refuses it with a static key`,
          "use a CBC cipher, e.g. AES-256-CBC, or vpn.auth: tls",
        );
      if (vpn.cipher === undefined)
        r.warn(
          ["vpn"],
          "no vpn.cipher for openvpn static-key: OpenVPN then uses BF-CBC, which OpenSSL 3 refuses",
          "set the cipher the lab's server uses, e.g. AES-256-CBC",
        );
    } else if (vpn.ca === undefined)
      r.error(
        ["vpn"],
        "vpn.ca is required for openvpn tls",
        `add vpn.ca: the path of the lab's CA certificate on the runners, e.g. /etc/gen-lab/${lab.name}/ca.crt`,
      );
  }
  if (vpn.type === "wireguard" && nameservers.length === 0)
    r.warn(
      ["intranet"],
      "no intranet.nameservers for wireguard: nothing pushes DNS over WireGuard",
      "list the lab's DNS servers in intranet.nameservers",
    );
  // NetworkManager-libreswan passes several ranges as one rightsubnet=a,b, which libreswan 4 refuses.
  if (vpn.type === "ipsec" && lab.intranet.cidrs.length > 1)
    r.warn(
      ["intranet", "cidrs"],
      "an ipsec tunnel to several intranet ranges needs libreswan 5 or later on the runners (libreswan 4 refuses a list in rightsubnet)",
      "use an image with libreswan 5, or cover the intranet with one range",
    );

  const required: readonly RunnerField[] = RUNNER_FIELDS[kind].filter(
    (f) => f !== "key_direction",
  );
  const allowed: readonly RunnerField[] = [
    ...RUNNER_FIELDS[kind],
    ...(kind === "ipsec" ? [] : (["port"] as const)),
  ];
  const tunnel: (Range & { route?: Net })[] = [];
  lab.runners.forEach((runner, i) => {
    const base: YamlPath = ["runners", i, "vpn"];
    for (const f of required)
      if (runner.vpn[f] === undefined)
        r.error(
          base,
          `${f} is required for ${kind}`,
          `add ${f}${/ip|address/.test(f) ? ", the runner's tunnel address" : `, the path of the file on the runner, e.g. /etc/gen-lab/${lab.name}/${runner.name}.${f.replace(/_file$/, "")}`}`,
        );
    for (const f of Object.keys(runner.vpn) as RunnerField[])
      if (!allowed.includes(f))
        r.error(
          [...base, f],
          `${f} is not used by ${kind}`,
          `remove it (fields for ${kind}: ${allowed.join(", ")})`,
          { key: true },
        );
    if (kind === "openvpn static-key") {
      for (const f of ["local_ip", "remote_ip"] as const) {
        const a = runner.vpn[f];
        if (a !== undefined)
          tunnel.push({ path: [...base, f], net: hostNet(a) });
      }
      if (
        runner.vpn.local_ip !== undefined &&
        runner.vpn.local_ip === runner.vpn.remote_ip
      )
        r.error(
          [...base, "remote_ip"],
          "remote_ip equals local_ip",
          "the two ends of the tunnel need two addresses, e.g. 10.255.0.2 and 10.255.0.1",
        );
    }
    if (kind === "wireguard" && runner.vpn.address !== undefined) {
      // NetworkManager routes the address's network into the tunnel: it must stay clear too.
      const [address, prefix] = runner.vpn.address.split("/");
      const route = parseNet(networkOf(runner.vpn.address));
      tunnel.push({
        path: [...base, "address"],
        net: hostNet(address!),
        route: Number(prefix) < 32 ? route : undefined,
      });
    }
  });
  // A static-key server is point to point: one port serves one runner.
  if (kind === "openvpn static-key")
    pairwise(
      lab.runners.map((x, i) => ({
        i,
        port: x.vpn.port ?? DEFAULT_OPENVPN_PORT,
      })),
      (a, b) => {
        if (a.port !== b.port) return false;
        const set = lab.runners[b.i]!.vpn.port !== undefined;
        r.error(
          ["runners", b.i, "vpn", ...(set ? ["port"] : [])],
          `port ${b.port}${set ? "" : " (the default)"} on ${vpn.remote} is also the port of runner ${lab.runners[a.i]!.name} (runners[${a.i}]): a static-key server port serves one peer`,
          "give each runner the port of its own OpenVPN server on the lab's endpoint",
        );
        return true;
      },
    );
  pairwise(tunnel, (a, b) => {
    if (!overlaps(a.net, b.net)) return false;
    r.error(
      b.path,
      `tunnel address ${b.net.text.replace("/32", "")} is also used at ${formatPath(a.path)}`,
      "every runner needs its own tunnel addresses",
    );
    return true;
  });
  for (const t of tunnel) {
    const range = t.route ?? t.net;
    const shown = range.text.replace("/32", "");
    if (overlaps(range, vpc))
      r.error(
        t.path,
        `tunnel address ${shown} is inside the VPC ${vpc.text}`,
        "pick tunnel addresses outside the VPC and the intranet, e.g. from 10.255.0.0/24",
      );
    for (const i of intranet)
      if (overlaps(range, i.net))
        r.error(
          t.path,
          `tunnel address ${shown} is inside the intranet ${i.net.text}`,
          "pick tunnel addresses outside the VPC and the intranet",
        );
    checkReserved(r, { path: t.path, net: range }, "tunnel address", true);
  }
}

/** Every credential file of the lab with where it was written: the lab's CA, then each runner's own. */
export function credentialPaths(
  lab: LabInput,
): { path: YamlPath; file: string }[] {
  const out: { path: YamlPath; file: string }[] = [];
  if (lab.vpn.type === "openvpn" && lab.vpn.ca !== undefined)
    out.push({ path: ["vpn", "ca"], file: lab.vpn.ca });
  lab.runners.forEach((runner, i) => {
    for (const [field, file] of credentialFiles(lab, runner))
      if (field !== "ca")
        out.push({ path: ["runners", i, "vpn", field], file });
  });
  return out;
}

/** `a.foo.example.com` is under `foo.example.com`, and so is `foo.example.com` itself. */
export function underDomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

/** Routing domains, Beaker, egress and bucket names. */
function checkNames(
  r: Reporter,
  lab: LabInput,
  intranet: readonly Range[],
): void {
  const domains = lab.intranet.domains;
  const underAny = (host: string) => domains.some((d) => underDomain(host, d));
  const beaker = new URL(lab.beaker.url);
  if (!underAny(beaker.hostname))
    r.error(
      ["beaker", "url"],
      `host ${beaker.hostname} is not under intranet.domains (${domains.join(", ")})`,
      "Beaker is reached through the tunnel: add its domain to intranet.domains, or fix the URL",
    );
  pairwise(
    domains.map((d, i) => ({ d, i })),
    (a, b) => {
      if (!underDomain(a.d, b.d) && !underDomain(b.d, a.d)) return false;
      r.error(
        ["intranet", "domains", b.i],
        `${b.d} overlaps ${a.d} (intranet.domains[${a.i}])`,
        "list a routing domain once; the parent domain already covers its subdomains",
      );
      return true;
    },
  );
  // Every name under a routing domain is asked of the lab's DNS, by runners and workers alike.
  const needed: [string, string][] = [
    [new URL(lab.pipeline.gitlab_url).hostname, "pipeline.gitlab_url"],
    [`s3.${lab.aws.region}.amazonaws.com`, "S3 and ECR of the region"],
    [
      lab.aws.region === "us-east-1"
        ? "ip-10-0-0-1.ec2.internal"
        : `ip-10-0-0-1.${lab.aws.region}.compute.internal`,
      "EC2's host names",
    ],
  ];
  domains.forEach((domain, i) => {
    const path = ["intranet", "domains", i];
    const hit = needed.find(([host]) => underDomain(host, domain));
    const aws = needed.slice(1).find(([host]) => underDomain(host, domain));
    if (aws && !domain.includes("."))
      r.error(
        path,
        `${domain} is a whole top-level domain: every name under it would go to the lab's DNS, ${aws[0]} (${aws[1]}) among them`,
        "list the lab's own domains, e.g. foo.example.com",
      );
    else if (hit)
      r.warn(
        path,
        `${domain} covers ${hit[0]} (${hit[1]}): its lookups would go to the lab's DNS`,
        "list only the lab's own domains",
      );
  });
  (lab.egress ?? []).forEach((e, i) => {
    const path: YamlPath = ["egress", i, "to"];
    if (e.to.includes("/")) {
      if (!hostBitsZero(e.to))
        r.error(
          path,
          `${e.to} has host bits set`,
          `write the network address: ${networkOf(e.to)}`,
        );
      else if (!intranet.some((x) => contains(x.net, parseNet(e.to))))
        r.error(
          path,
          `${e.to} is not inside intranet.cidrs`,
          "egress only limits traffic into the intranet: use a range inside intranet.cidrs",
        );
    } else if (!underAny(e.to))
      r.error(
        path,
        `host ${e.to} is not under intranet.domains (${domains.join(", ")})`,
        "name a host of the intranet, or a CIDR inside intranet.cidrs",
      );
  });
  // The workers exist to reach Beaker: an allow-list without it is almost surely a slip.
  const port = Number(beaker.port || (beaker.protocol === "http:" ? 80 : 443));
  if (
    lab.egress &&
    !lab.egress.some(
      (e) =>
        e.protocol === "tcp" &&
        e.ports.includes(port) &&
        (e.to.includes("/") || e.to === beaker.hostname),
    )
  )
    r.warn(
      ["egress"],
      `no rule lets the workers reach Beaker (${beaker.hostname}, tcp port ${port})`,
      `add { to: ${beaker.hostname}, ports: [${port}] }, or Beaker's CIDR with port ${port}`,
    );
  lab.aws.buckets.forEach((purpose, i) => {
    const name = bucketName(lab, purpose);
    const problem = bucketNameProblem(name);
    if (problem)
      r.error(
        ["aws", "buckets", i],
        `bucket name ${name} ${problem}`,
        "change the prefix, environment, lab name or bucket purpose",
      );
  });
  // AWS refuses security group names starting with sg-; the runners' group starts with the prefix.
  if (lab.prefix.startsWith("sg-"))
    r.error(
      ["prefix"],
      `prefix ${lab.prefix} makes the runners' security group name start with sg-, which AWS refuses`,
      "choose a prefix that does not start with sg-",
    );
}

/** S3's naming rules for general purpose buckets. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length > 63)
    return `is ${name.length} characters; S3 allows 3 to 63`;
  if (
    /^(xn--|sthree-|amzn-s3-demo-)|(-s3alias|--ol-s3|--x-s3|--table-s3)$/.test(
      name,
    )
  )
    return "starts or ends in a way S3 keeps for itself";
  return undefined;
}

/**
 * The endpoint is reached outside the tunnel: an address of it in the intranet (that route
 * goes into the tunnel it would carry), a range no host routes, or a runner's or tunnel's own.
 */
function checkVpnRemote(
  r: Reporter,
  lab: LabInput,
  intranet: readonly Range[],
): void {
  const remote = lab.vpn.remote;
  if (!/^[\d.]+$/.test(remote)) return;
  const at = hostNet(remote);
  const own = lab.runners.flatMap((x) => [
    x.address,
    x.vpn.local_ip,
    x.vpn.remote_ip,
    x.vpn.address?.split("/")[0],
  ]);
  const why = [
    ...intranet
      .filter((i) => contains(i.net, at))
      .map(
        (i) =>
          `lies in the intranet ${i.net.text}, which is routed into the tunnel it would carry`,
      ),
    ...FORBIDDEN.filter((f) => contains(f.net, at)).map(
      (f) => `is in ${f.net.text}, ${f.why}`,
    ),
    ...(own.includes(remote)
      ? ["is an address of a runner or of a tunnel"]
      : []),
  ];
  for (const w of why)
    r.error(
      ["vpn", "remote"],
      `the VPN endpoint ${remote} ${w}`,
      "give the host name or public address of the lab's VPN endpoint",
    );
}

/** Keys of a trigger entry gen-lab writes itself (or the trigger reads): `extra` may not use them. */
export const TRIGGER_KEYS = [
  "git_url",
  "branch",
  "cki_pipeline_project",
  "cki_pipeline_branch",
  "gitlab_url",
  "runner_tags",
] as const;

/** Minutes between two runs of the trigger below which each run still works on the last one's commits. */
const SCHEDULE_MIN_MINUTES = 5;

/** Trigger names, extra variables that would replace what gen-lab writes, and a schedule that fires too often. */
function checkPipeline(r: Reporter, lab: LabInput): void {
  const schedule = lab.pipeline.schedule;
  const every = /^@every (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(schedule);
  const minute = schedule.split(/[ \t]+/)[0]!;
  const step = /^(?:\*|0-59)(?:\/(\d+))?$/.exec(minute);
  if (
    (every &&
      Number(every[1] ?? 0) * 60 +
        Number(every[2] ?? 0) +
        Number(every[3] ?? 0) / 60 <
        SCHEDULE_MIN_MINUTES) ||
    (step && Number(step[1] ?? 1) < SCHEDULE_MIN_MINUTES)
  )
    r.error(
      ["pipeline", "schedule"],
      `${JSON.stringify(schedule)} runs the trigger more often than every ${SCHEDULE_MIN_MINUTES} minutes`,
      'a trigger polls git and GitLab on every run: schedule it every few minutes at most, e.g. "*/15 * * * *"',
    );
  const { project, parent_project: parent } = lab.pipeline;
  if (parent !== undefined && !project.startsWith(`${parent}/`))
    r.error(
      ["pipeline", "parent_project"],
      `${parent} is not a group that pipeline.project ${project} lies in`,
      `the trigger runs pipelines in <parent_project>/<cki_pipeline_project>: give a leading part of ${project}, or leave it out`,
    );
  lab.pipeline.triggers.forEach((t, i) => {
    const first = lab.pipeline.triggers.findIndex((x) => x.name === t.name);
    if (first < i)
      r.error(
        ["pipeline", "triggers", i, "name"],
        `trigger ${t.name} is already defined at pipeline.triggers[${first}]`,
        "give each trigger a unique name",
      );
    if (t.pipeline_branch === undefined && !BRANCH_RE.test(t.name))
      r.error(
        ["pipeline", "triggers", i, "name"],
        `trigger name ${t.name} is no git branch name, and the pipeline branch defaults to it`,
        "set pipeline_branch: the pipeline project's branch its pipelines run in",
      );
    for (const key of Object.keys(t.extra ?? {}))
      if ((TRIGGER_KEYS as readonly string[]).includes(key))
        r.error(
          ["pipeline", "triggers", i, "extra", key],
          `extra key ${JSON.stringify(key)} would replace what gen-lab writes for the trigger`,
          "set it through the trigger's or the pipeline's own field",
          { key: true },
        );
  });
}

/** The oldest gitlab-runner with the docker-autoscaler executor generally available. */
const AUTOSCALER_SINCE = [17, 1] as const;

/** The SSM parameters of each runner's credentials, with where their names come from. */
export function credentialParameters(
  lab: LabInput,
): { path: YamlPath; field: string; name: string }[] {
  return lab.runners.flatMap((runner, i) =>
    credentialFiles(lab, runner).map(([field]) => ({
      path: runner.ssm_parameters?.[field]
        ? ["runners", i, "ssm_parameters", field]
        : ["runners", i],
      field,
      name:
        runner.ssm_parameters?.[field] ??
        defaultParameter(lab, runner.name, field),
    })),
  );
}

/** The workers fit their subnets, the executor is one gitlab-runner still has, parameters are per runner. */
function checkWorkers(
  r: Reporter,
  lab: LabInput,
  subnets: readonly Range[],
): void {
  const w = lab.workers;
  if (w.executor === "docker+machine")
    r.warn(
      ["workers", "executor"],
      "docker+machine is deprecated since GitLab 17.5 and removed in GitLab 20.0 (May 2027)",
      "use the default executor, docker-autoscaler: it needs no change elsewhere in the lab",
    );
  const [major, minor] = w.gitlab_runner_version.split(".").map(Number) as [
    number,
    number,
  ];
  if (
    w.executor === "docker-autoscaler" &&
    (major < AUTOSCALER_SINCE[0] ||
      (major === AUTOSCALER_SINCE[0] && minor < AUTOSCALER_SINCE[1]))
  )
    r.error(
      ["workers", "gitlab_runner_version"],
      `gitlab-runner ${w.gitlab_runner_version} has no generally available docker-autoscaler executor (it has since ${AUTOSCALER_SINCE.join(".")})`,
      "pin a newer gitlab-runner, or leave the version out for gen-lab's default",
    );
  // AWS keeps five addresses of every subnet; each worker takes one.
  for (const s of subnets)
    if (
      s.path.at(-1) === "worker_subnet" &&
      s.net.last - s.net.first + 1 - 5 < w.max_instances
    )
      r.error(
        s.path,
        `${s.net.text} holds ${s.net.last - s.net.first + 1 - 5} workers, fewer than workers.max_instances (${w.max_instances})`,
        "make the worker subnet larger, or lower workers.max_instances",
      );
  const reserved = lab.runners.flatMap((x) =>
    ["runner-token", "worker-subnet-id"].map((f) =>
      defaultParameter(lab, x.name, f),
    ),
  );
  // The lab's CA certificate may be one parameter for all runners; every other is a runner's own.
  const parameters = credentialParameters(lab);
  parameters.forEach((p, i) => {
    if (reserved.includes(p.name))
      r.error(
        p.path,
        `SSM parameter ${p.name} is the one gen-lab keeps a runner's token or subnet in`,
        "name another parameter",
      );
    const first = parameters.findIndex((q) => q.name === p.name);
    if (first < i && !(p.field === "ca" && parameters[first]!.field === "ca"))
      r.error(
        p.path,
        `SSM parameter ${p.name} is also the parameter of ${formatPath(parameters[first]!.path)}`,
        "credentials are per runner: give each its own parameter",
      );
  });
}
