/**
 * The data plane, for real, in network namespaces (issue 6).
 *
 *   worker ──veth── runner ──veth(eth0, DHCP)── lab
 *   198.18.4.10      198.18.0.10 (vpc0)          198.51.100.1  OpenVPN server(s), DHCP
 *   198.18.8.10      198.18.0.26 (lab e2eb)      203.0.113.0/24, 192.0.2.0/24 on lo: web + DNS
 *
 * The files are generated at test time from test/e2e/lab.yaml and test/e2e/lab-b.yaml with the
 * built CLI and used as deployed: in the runner's own mount namespace a real NetworkManager (with
 * NetworkManager-openvpn) on a private system bus loads the generated keyfiles and connects the
 * generated uplink (which starts no tunnel: the tunnel keeper does that, test/e2e/resilience.test.ts
 * runs it; here the test starts the VPN profile); NM's dispatcher runs the generated script
 * on the uplink's up and on the tunnel's events; a real systemd-resolved (unpacked, never installed)
 * reads the generated drop-in and gets the tunnel's DNS from NetworkManager over D-Bus.
 * The lab runs a real `openvpn --secret` server whose settings mirror the generated keyfile.
 *
 * Needs root and network namespaces; without them it fails (it never skips).
 * Run: npm run test:e2e   (or: npx uvu -r tsx test/e2e '\.test\.ts$' after npm run build)
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import {
  addNamespace,
  cleanup,
  setLogDir,
  sh,
  startDaemon,
  tail,
  waitFor,
  type Daemon,
} from "./harness.js";
import {
  readTunnel,
  stubListenerExtra,
  workerResolved,
  type Tunnel,
} from "./generated.js";
import { fetchResolved, type Resolved } from "./resolved.js";
import {
  inNs,
  DNSMASQ,
  httpGet,
  iptablesSave,
  prepareRunner,
  resolveA,
  requireEnvironment,
  startRunner,
  type Http,
  type Runner,
  veth,
} from "./runner.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BIN = path.join(ROOT, "bin", "gen-lab.js");
const LAB_A = path.join(HERE, "lab.yaml");
const LAB_B = path.join(HERE, "lab-b.yaml");
const started = Date.now();

// Unique per run: parallel runs never share a namespace.
const suffix = randomBytes(3).toString("hex");
const NS = {
  lab: `gl-lab-${suffix}`,
  runner: `gl-runner-${suffix}`,
  worker: `gl-worker-${suffix}`,
};
// Addresses of the test's own topology (documentation ranges only); the lab's addresses come
// from the lab files and the generated files.
const LAB_DHCP_RANGE = ["198.51.100.50", "198.51.100.60"] as const;
const WORKER_HOST = 10; // worker address = <worker subnet> + 10
const HTTP_PORT_ALLOWED = 80; // egress: beaker.e2e.example.com ports [80]
const HTTP_PORT_DENIED = 8081; // not on the allow-list
const CIDR_HOST = "203.0.113.70"; // egress: 203.0.113.64/26 ports [8080]
const CIDR_PORT = 8080;
// A name only the DNS test asks for: the lab's DNS log then shows which way that query came.
const PROBE_LABEL = "dns-probe";
const PROBE_HOST = 11; // dns-probe.<domain> = .11 of the first intranet CIDR

interface LabSide {
  name: string;
  yaml: any;
  rootfs: string;
  userData: string;
  tunnel: Tunnel;
  runnerAddress: string;
  workerSubnet: string;
  workerAddress: string;
  beakerHost: string;
  beakerAddress: string;
}

interface State {
  tmp: string;
  nsdir: string; // what runner-ns.sh mounts
  runner: Runner; // NetworkManager and friends in the runner's namespaces
  a: LabSide;
  b: LabSide;
  lanDns: Daemon;
  servers: Map<string, Daemon>;
  baseline: string; // iptables-save (filter+nat): Docker's chains, the uplink up, no tunnel
  resolved: Resolved;
}
let S: State | undefined;
let setupError: Error | undefined;

function ready(): State {
  if (!S)
    throw new Error(
      `the data plane was not set up, so this cannot be checked: ${setupError?.message.split("\n")[0] ?? "setup did not run"}`,
    );
  return S;
}

// ---------------------------------------------------------------- namespace helpers

/** A command inside the runner's network AND mount namespace (where NM, resolved, the keys live). */
const inRunner = (argv: readonly string[]) => ready().runner.run(argv);

function nmcli(args: readonly string[], allowFail = false) {
  return sh(inRunner(["nmcli", ...args]), { allowFail });
}

/** iptables-save of the runner, filter and nat tables, without comments and counters. */
const rules = () => iptablesSave(NS.runner);

function chainRules(table: string, chain: string): string | undefined {
  const r = sh(
    inNs(NS.runner, ["iptables", "-w", "5", "-t", table, "-S", chain]),
    {
      allowFail: true,
    },
  );
  return r.status === 0 ? r.stdout : undefined;
}

/** The runner's tunnel interface of a lab: the one carrying the keyfile's local-ip. */
function tunnelInterface(t: Tunnel): string | undefined {
  const r = sh(inNs(NS.runner, ["ip", "-o", "-4", "addr", "show"]));
  for (const line of r.stdout.split("\n")) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(line);
    if (m && m[2]!.split("/")[0] === t.localIp) return m[1]!;
  }
  return undefined;
}

/** Run a lab's generated dispatcher script by hand, exactly as NetworkManager runs it. */
function dispatch(t: Tunnel, action: string) {
  const iface = tunnelInterface(t) ?? "tun-gone";
  return sh(
    inRunner([
      "env",
      "-i",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      `CONNECTION_UUID=${t.uuid}`,
      `CONNECTION_ID=${t.vpnId}`,
      `NM_DISPATCHER_ACTION=${action}`,
      `VPN_IP_IFACE=${iface}`,
      `DEVICE_IFACE=${iface}`,
      `DEVICE_IP_IFACE=${iface}`,
      `/etc/NetworkManager/dispatcher.d/${path.basename(t.dispatcher)}`,
      iface,
      action,
    ]),
  );
}

/** An HTTP GET from the worker. curl exit 7 = connection refused, 28 = timeout. */
const workerGet = (address: string, port: number, timeoutS = 3): Http =>
  httpGet(NS.worker, `http://${address}:${port}/`, timeoutS);

function assertReaches(
  side: LabSide,
  address: string,
  port: number,
  what: string,
) {
  const r = workerGet(address, port);
  assert.ok(
    r.ok && r.json,
    `${what}: worker -> http://${address}:${port}/ failed (curl exit ${r.status}): ${r.err}${r.body}\n${diagnostics()}`,
  );
  assert.is(
    r.json!.client,
    side.tunnel.localIp,
    `${what}: the lab must see the runner's tunnel address (masquerade), saw ${r.json!.client}`,
  );
}

function diagnostics(): string {
  if (!S) return "";
  const parts = [`--- runner rules\n${rules()}`];
  for (const name of ["NetworkManager", "nm-dispatcher", "systemd-resolved"]) {
    const f = path.join(S.tmp, "logs", `${name}.log`);
    if (fs.existsSync(f))
      parts.push(
        `--- ${name} (last lines)\n${fs.readFileSync(f, "utf8").split("\n").slice(-25).join("\n")}`,
      );
  }
  return parts.join("\n");
}

// ---------------------------------------------------------------- Docker 28's chains

/**
 * Docker 28's iptables setup as moby v28.5.2 does it (libnetwork/drivers/bridge/internal/
 * iptabler/iptabler.go and network.go, libnetwork/firewall_linux.go): FORWARD policy DROP;
 * chains DOCKER, DOCKER-FORWARD, DOCKER-BRIDGE, DOCKER-CT, DOCKER-ISOLATION-STAGE-1/2 (filter),
 * DOCKER (nat); EnsureJumpRule (delete, then insert first) FORWARD -> DOCKER-FORWARD, then
 * DOCKER-FORWARD -> DOCKER-BRIDGE, -> DOCKER-ISOLATION-STAGE-1, -> DOCKER-CT; the default bridge
 * docker0 172.17.0.0/16 with its MASQUERADE; last the controller's DOCKER-USER chain with
 * EnsureJumpRule FORWARD -> DOCKER-USER, so FORWARD starts with -j DOCKER-USER, -j DOCKER-FORWARD.
 */
function dockerStart(): void {
  const ipt = (...a: string[]) =>
    sh(inNs(NS.runner, ["iptables", "-w", "5", ...a]));
  const has = (...a: string[]) =>
    sh(inNs(NS.runner, ["iptables", "-w", "5", ...a]), { allowFail: true })
      .status === 0;
  const newChain = (table: string, chain: string) => {
    if (!has("-t", table, "-n", "-L", chain)) ipt("-t", table, "-N", chain);
  };
  const ensureJump = (
    table: string,
    from: string,
    to: string,
    ...match: string[]
  ) => {
    while (has("-t", table, "-C", from, ...match, "-j", to))
      ipt("-t", table, "-D", from, ...match, "-j", to);
    ipt("-t", table, "-I", from, ...match, "-j", to);
  };
  const append = (table: string, chain: string, ...rule: string[]) => {
    if (!has("-t", table, "-C", chain, ...rule))
      ipt("-t", table, "-A", chain, ...rule);
  };
  ipt("-t", "filter", "-P", "FORWARD", "DROP");
  newChain("nat", "DOCKER");
  for (const c of [
    "DOCKER",
    "DOCKER-FORWARD",
    "DOCKER-BRIDGE",
    "DOCKER-CT",
    "DOCKER-ISOLATION-STAGE-1",
    "DOCKER-ISOLATION-STAGE-2",
  ])
    newChain("filter", c);
  ensureJump("filter", "FORWARD", "DOCKER-FORWARD");
  ensureJump("filter", "DOCKER-FORWARD", "DOCKER-BRIDGE");
  ensureJump("filter", "DOCKER-FORWARD", "DOCKER-ISOLATION-STAGE-1");
  ensureJump("filter", "DOCKER-FORWARD", "DOCKER-CT");
  append(
    "nat",
    "PREROUTING",
    "-m",
    "addrtype",
    "--dst-type",
    "LOCAL",
    "-j",
    "DOCKER",
  );
  append(
    "nat",
    "OUTPUT",
    "!",
    "-d",
    "127.0.0.0/8",
    "-m",
    "addrtype",
    "--dst-type",
    "LOCAL",
    "-j",
    "DOCKER",
  );
  // The default bridge network.
  append(
    "nat",
    "POSTROUTING",
    "-s",
    "172.17.0.0/16",
    "!",
    "-o",
    "docker0",
    "-j",
    "MASQUERADE",
  );
  append("nat", "DOCKER", "-i", "docker0", "-j", "RETURN");
  append(
    "filter",
    "DOCKER",
    "!",
    "-i",
    "docker0",
    "-o",
    "docker0",
    "-j",
    "DROP",
  );
  append("filter", "DOCKER-BRIDGE", "-o", "docker0", "-j", "DOCKER");
  append(
    "filter",
    "DOCKER-CT",
    "-o",
    "docker0",
    "-m",
    "conntrack",
    "--ctstate",
    "RELATED,ESTABLISHED",
    "-j",
    "ACCEPT",
  );
  append("filter", "DOCKER-FORWARD", "-i", "docker0", "-j", "ACCEPT");
  append(
    "filter",
    "DOCKER-ISOLATION-STAGE-1",
    "-i",
    "docker0",
    "!",
    "-o",
    "docker0",
    "-j",
    "DOCKER-ISOLATION-STAGE-2",
  );
  append("filter", "DOCKER-ISOLATION-STAGE-2", "-o", "docker0", "-j", "DROP");
  // The controller's user chain (never flushed by Docker), jumped to first.
  newChain("filter", "DOCKER-USER");
  ensureJump("filter", "FORWARD", "DOCKER-USER");
}

/** A Docker restart at its harshest: every Docker chain and jump gone, then set up afresh. */
function dockerRestart(): void {
  const ipt = (...a: string[]) =>
    sh(inNs(NS.runner, ["iptables", "-w", "5", ...a]), { allowFail: true });
  // Every jump and rule Docker put into the built-in chains, deleted as often as it is there.
  const dockerRules = [
    "filter FORWARD -j DOCKER-USER",
    "filter FORWARD -j DOCKER-FORWARD",
    "nat PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
    "nat OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
    "nat POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
  ].map((r) => r.split(" "));
  for (const [table, chain, ...rule] of dockerRules)
    while (ipt("-t", table!, "-D", chain!, ...rule).status === 0);
  const chains = [
    "DOCKER-FORWARD",
    "DOCKER-BRIDGE",
    "DOCKER-CT",
    "DOCKER-ISOLATION-STAGE-1",
    "DOCKER-ISOLATION-STAGE-2",
    "DOCKER",
  ];
  for (const c of chains) ipt("-t", "filter", "-F", c);
  for (const c of chains) ipt("-t", "filter", "-X", c);
  ipt("-t", "nat", "-F", "DOCKER");
  ipt("-t", "nat", "-X", "DOCKER");
  dockerStart();
}

// ---------------------------------------------------------------- setup

function labSide(name: string, file: string, out: string): LabSide {
  const yaml = parseYaml(fs.readFileSync(file, "utf8"));
  const runner = yaml.runners[0];
  const zone = yaml.aws.zones[runner.zone];
  const runnerDir = path.join(out, name, "runners", runner.name);
  const rootfs = path.join(runnerDir, "rootfs");
  const workerSubnet: string = zone.worker_subnet;
  const [net] = workerSubnet.split("/");
  const o = net!.split(".").map(Number);
  o[3] = o[3]! + WORKER_HOST;
  const beakerHost = new URL(yaml.beaker.url).hostname;
  const tunnel = readTunnel(rootfs, name);
  // The intranet's web server: .10 of the first intranet CIDR.
  const intranet = (yaml.intranet.cidrs[0] as string)
    .split("/")[0]!
    .split(".")
    .map(Number);
  intranet[3] = intranet[3]! + 10;
  return {
    name,
    yaml,
    rootfs,
    userData: path.join(runnerDir, "worker-user-data.yaml"),
    tunnel,
    runnerAddress: runner.address,
    workerSubnet,
    workerAddress: o.join("."),
    beakerHost,
    beakerAddress: intranet.join("."),
  };
}

function probeAddress(side: LabSide): string {
  const o = (side.yaml.intranet.cidrs[0] as string)
    .split("/")[0]!
    .split(".")
    .map(Number);
  o[3] = o[3]! + PROBE_HOST;
  return o.join(".");
}

/** Copy one lab's generated files (or some of them) into the runner's deployed rootfs. */
function deploy(
  side: LabSide,
  nsdir: string,
  which: "systemd" | "networkmanager",
) {
  const copy = (rel: string) => {
    const src = path.join(side.rootfs, rel);
    const dst = path.join(nsdir, "rootfs", rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, fs.statSync(src).mode & 0o7777);
  };
  if (which === "systemd")
    copy(`etc/systemd/resolved.conf.d/90-gen-lab-${side.name}.conf`);
  else {
    copy(`etc/NetworkManager/system-connections/${side.name}-vpn.nmconnection`);
    copy(
      `etc/NetworkManager/system-connections/${side.name}-uplink.nmconnection`,
    );
    copy(`etc/NetworkManager/dispatcher.d/90-gen-lab-${side.name}`);
  }
}

/** The lab's OpenVPN server: the peer of the generated profile, every setting mirrored from it. */
function startVpnServer(side: LabSide, keyFile: string): Daemon {
  const t = side.tunnel;
  const argv = [
    "openvpn",
    "--dev",
    "tun",
    "--local",
    t.remote,
    "--port",
    String(t.port),
    "--proto",
    t.tcp ? "tcp-server" : "udp",
    "--ifconfig",
    t.remoteIp,
    t.localIp,
    "--secret",
    keyFile,
    ...(t.keyDirection === 0 || t.keyDirection === 1
      ? [String(1 - t.keyDirection)]
      : []),
    ...(t.cipher ? ["--cipher", t.cipher] : []),
    // A client's explicit exit notification restarts the server: keep its tun across that.
    "--persist-tun",
    "--persist-key",
    "--verb",
    "3",
  ];
  return startDaemon(`openvpn-server-${side.name}`, inNs(NS.lab, argv));
}

/** How often the lab's OpenVPN server has (re)opened its socket for a peer. */
function serverListens(server: Daemon): number {
  return (
    fs.readFileSync(server.log, "utf8").split("link remote: [AF_UNSPEC]")
      .length - 1
  );
}

/**
 * Take a lab's tunnel down with NetworkManager and wait until the dispatcher removed its rules
 * and the lab's server, which restarts on the client's exit notification, listens again (a real
 * lab's server is long back by the next connection; without the wait the first packets of an
 * immediate reconnect are lost and the dispatcher's name lookups time out before they retry).
 */
async function takeDown(side: LabSide): Promise<void> {
  const server = ready().servers.get(`vpn-${side.name}`)!;
  const listens = serverListens(server);
  nmcli(["connection", "down", side.tunnel.vpnId]);
  await waitRulesGone(side);
  // The tunnel's device is named after the lab: openvpn holds it until it has told the lab it
  // leaves, a moment after NetworkManager reports the tunnel down.
  await waitFor(
    `openvpn to release ${side.tunnel.device}`,
    () =>
      sh(inNs(NS.runner, ["ip", "link", "show", side.tunnel.device]), {
        allowFail: true,
      }).status !== 0,
  );
  await waitFor(
    `the lab's OpenVPN server of ${side.name} to listen again`,
    () => {
      if (server.exited) throw new Error(tail(server));
      return serverListens(server) > listens;
    },
  );
}

async function waitVpnUp(side: LabSide): Promise<void> {
  const t = side.tunnel;
  await waitFor(
    `NetworkManager to activate ${t.vpnId}`,
    () => {
      const r = nmcli(
        ["-g", "GENERAL.STATE", "connection", "show", t.vpnId],
        true,
      );
      return r.stdout.trim() === "activated";
    },
    60_000,
    200,
  );
  // The dispatcher's vpn-up ends by hooking its NAT chain into POSTROUTING.
  await waitFor(
    `the dispatcher's vpn-up for ${side.name} (GENLAB-NAT-${side.name} hooked into POSTROUTING)`,
    () =>
      (chainRules("nat", "POSTROUTING") ?? "")
        .split("\n")
        .includes(`-A POSTROUTING -j GENLAB-NAT-${side.name}`),
    60_000,
    100,
  );
}

async function waitRulesGone(side: LabSide): Promise<void> {
  await waitFor(
    `the dispatcher's vpn-down for ${side.name}`,
    () =>
      chainRules("filter", `GENLAB-FWD-${side.name}`) === undefined &&
      chainRules("nat", `GENLAB-NAT-${side.name}`) === undefined,
    60_000,
    100,
  );
}

async function setup(): Promise<State> {
  requireEnvironment(suffix);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-e2e-"));
  fs.mkdirSync(path.join(tmp, "logs"));
  setLogDir(path.join(tmp, "logs"));

  // 1. Generate both labs with the built CLI.
  const out = path.join(tmp, "out");
  const gen = sh([process.execPath, BIN, LAB_A, LAB_B, "-o", out], {
    timeoutMs: 60_000,
  });
  assert.ok(gen.status === 0, `gen-lab failed: ${gen.stderr}`);
  const a = labSide("e2e", LAB_A, out);
  const b = labSide("e2eb", LAB_B, out);
  for (const side of [a, b]) {
    assert.equal(
      side.tunnel.secondaries,
      [],
      `${side.name}: the uplink must start no tunnel (a failing one would fail the uplink)`,
    );
    assert.equal(stubListenerExtra(side.rootfs, side.name), [
      side.runnerAddress,
    ]);
  }
  const resolved = fetchResolved();

  // 2. The runner's files as deployed, its keys, and what its mount namespace shows.
  const nsdir = path.join(tmp, "runner");
  // The worker-facing link is configured by the test (AWS would give the runner one interface).
  prepareRunner(nsdir, ["vpc0"]);
  deploy(a, nsdir, "networkmanager");
  deploy(a, nsdir, "systemd");
  deploy(b, nsdir, "systemd"); // lab b's keyfiles join later (two uplinks for one eth0 would race)
  for (const side of [a, b]) {
    const key = path.join(nsdir, "keys", path.basename(side.tunnel.staticKey));
    assert.is(
      path.dirname(side.tunnel.staticKey),
      "/run/gen-lab-e2e",
      "runner-ns.sh puts the keys in /run/gen-lab-e2e",
    );
    sh(["openvpn", "--genkey", "secret", key]);
    fs.chmodSync(key, 0o600);
  }
  // 3. Namespaces and links.
  for (const ns of [NS.lab, NS.runner, NS.worker]) addNamespace(ns);
  const uplink = a.tunnel.uplinkInterface;
  veth("up0", NS.lab, uplink, NS.runner);
  veth("eth0", NS.worker, "vpc0", NS.runner);
  const lab = (...a: string[]) => sh(["ip", "-n", NS.lab, ...a]);
  const runnerIp = (...a: string[]) => sh(["ip", "-n", NS.runner, ...a]);
  const worker = (...a: string[]) => sh(["ip", "-n", NS.worker, ...a]);
  // The lab: VPN endpoint on the "internet" side, intranet hosts on lo.
  lab("addr", "add", `${a.tunnel.remote}/24`, "dev", "up0");
  lab("link", "set", "up0", "up");
  const intranetHosts = new Set<string>([
    a.beakerAddress,
    CIDR_HOST,
    ...a.tunnel.dns,
    b.beakerAddress,
    ...b.tunnel.dns,
  ]);
  for (const h of intranetHosts) lab("addr", "add", `${h}/32`, "dev", "lo");
  // The runner: its VPC address(es) face the worker (AWS routes the worker subnets' intranet
  // traffic to the runner's interface); eth0 (the uplink) is NetworkManager's.
  runnerIp("link", "set", "vpc0", "up");
  for (const side of [a, b]) {
    runnerIp("addr", "add", `${side.runnerAddress}/32`, "dev", "vpc0");
    runnerIp(
      "route",
      "add",
      side.workerSubnet,
      "dev",
      "vpc0",
      "src",
      side.runnerAddress,
    );
  }
  // The worker: the route table of its subnet sends the intranet to the runner.
  worker("link", "set", "eth0", "up");
  for (const side of [a, b]) {
    worker(
      "addr",
      "add",
      `${side.workerAddress}/${side.workerSubnet.split("/")[1]}`,
      "dev",
      "eth0",
    );
    worker(
      "route",
      "add",
      `${side.runnerAddress}/32`,
      "dev",
      "eth0",
      "src",
      side.workerAddress,
    );
    for (const cidr of side.yaml.intranet.cidrs as string[])
      worker(
        "route",
        "add",
        cidr,
        "via",
        side.runnerAddress,
        "src",
        side.workerAddress,
      );
  }
  // The runner's sysctl drop-ins, generated.
  for (const side of [a, b])
    sh(
      inNs(NS.runner, [
        "sysctl",
        "-q",
        "-p",
        path.join(side.rootfs, `etc/sysctl.d/90-gen-lab-${side.name}.conf`),
      ]),
    );

  // 4. The lab's services.
  const servers = new Map<string, Daemon>();
  servers.set(
    "dhcp",
    startDaemon(
      "dnsmasq-dhcp",
      inNs(NS.lab, [
        ...DNSMASQ,
        "--port=0",
        "--interface=up0",
        "--bind-interfaces",
        `--dhcp-range=${LAB_DHCP_RANGE[0]},${LAB_DHCP_RANGE[1]},255.255.255.0,1h`,
        `--dhcp-leasefile=${path.join(tmp, "dhcp.leases")}`,
      ]),
    ),
  );
  const dnsArgs = [
    ...DNSMASQ,
    "--log-queries",
    "--port=53",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
  ];
  for (const side of [a, b]) {
    for (const ns of side.tunnel.dns) dnsArgs.push(`--listen-address=${ns}`);
    for (const d of side.yaml.intranet.domains as string[])
      dnsArgs.push(`--local=/${d}/`);
    dnsArgs.push(`--host-record=${side.beakerHost},${side.beakerAddress}`);
    dnsArgs.push(
      `--host-record=${PROBE_LABEL}.${side.yaml.intranet.domains[0]},${probeAddress(side)}`,
    );
  }
  const lanDns = startDaemon("dnsmasq-dns", inNs(NS.lab, dnsArgs));
  const web = startDaemon(
    "web",
    inNs(NS.lab, [
      process.execPath,
      path.join(HERE, "lab-server.mjs"),
      `${a.beakerAddress}:${HTTP_PORT_ALLOWED}`,
      `${a.beakerAddress}:${HTTP_PORT_DENIED}`,
      `${CIDR_HOST}:${CIDR_PORT}`,
      `${b.beakerAddress}:${HTTP_PORT_ALLOWED}`,
    ]),
  );
  servers.set("web", web);
  const vpnA = startVpnServer(
    a,
    path.join(nsdir, "keys", path.basename(a.tunnel.staticKey)),
  );
  servers.set(`vpn-${a.name}`, vpnA);
  await waitFor("the lab's web server", () => {
    if (web.exited) throw new Error(tail(web));
    return fs.readFileSync(web.log, "utf8").includes("ready");
  });
  await waitFor("the lab's OpenVPN server", () => {
    if (vpnA.exited) throw new Error(tail(vpnA));
    return serverListens(vpnA) > 0;
  });
  await waitFor("the lab's DNS server", () => {
    if (lanDns.exited) throw new Error(tail(lanDns));
    return fs.readFileSync(lanDns.log, "utf8").includes("started");
  });

  // 5. Docker's chains exist before the tunnel comes up.
  dockerStart();

  // 6. The runner's mount namespace, private bus, systemd-resolved, nm-dispatcher, NetworkManager.
  const runner = await startRunner(NS.runner, nsdir, resolved);
  const state: State = {
    tmp,
    nsdir,
    runner,
    a,
    b,
    lanDns,
    servers,
    baseline: "",
    resolved,
  };
  S = state;
  const nm = runner.nm;

  // 7. NetworkManager autoconnects the generated uplink and its dispatcher installs the lab's
  //    fail-fast rules; then the VPN is started (the tunnel keeper's job on a runner) and the
  //    dispatcher's vpn-up installs NAT and forwarding.
  try {
    await waitFor(
      "the uplink's up (the dispatcher hooks GENLAB-REJ-e2e into FORWARD)",
      () => {
        if (nm.exited) throw new Error("NetworkManager exited");
        return (chainRules("filter", "FORWARD") ?? "")
          .split("\n")
          .includes(`-A FORWARD -j GENLAB-REJ-${a.name}`);
      },
      60_000,
      200,
    );
    state.baseline = rules();
    nmcli(["--wait", "60", "connection", "up", a.tunnel.vpnId]);
    await waitVpnUp(a);
  } catch (e) {
    throw new Error(
      `${(e as Error).message}\n--- NetworkManager\n${tail(nm, 60)}`,
    );
  }
  return state;
}

// ---------------------------------------------------------------- the tests

test.after(() => {
  if (S) console.log(`  data-plane logs: ${path.join(S.tmp, "logs")}`);
  cleanup();
  if (S && !process.env.GEN_LAB_E2E_KEEP)
    fs.rmSync(S.tmp, { recursive: true, force: true });
  console.log(
    `  data-plane test took ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});

test("setup: namespaces, the lab's OpenVPN server, NetworkManager connects the generated uplink and the generated VPN", async () => {
  try {
    await setup();
  } catch (e) {
    setupError = e as Error;
    S = undefined;
    throw e;
  }
  const { a } = ready();
  const active = nmcli([
    "-g",
    "NAME,TYPE,DEVICE",
    "connection",
    "show",
    "--active",
  ]).stdout;
  assert.ok(
    active.includes(`${a.tunnel.uplinkId}:`),
    `uplink not active:\n${active}`,
  );
  assert.ok(
    active.includes(`${a.tunnel.vpnId}:vpn:`),
    `VPN not active:\n${active}`,
  );
  const routes = sh(
    inNs(NS.runner, ["ip", "-4", "route", "show", "table", "all"]),
  ).stdout;
  const tun = tunnelInterface(a.tunnel);
  assert.ok(
    tun,
    `no interface carries the keyfile's local-ip ${a.tunnel.localIp}`,
  );
  for (const cidr of a.tunnel.routes)
    assert.ok(
      routes.includes(`${cidr} dev ${tun}`),
      `route ${cidr} via ${tun} missing:\n${routes}`,
    );
});

test("a worker reaches an intranet web server through the runner; the lab sees the runner's tunnel address", () => {
  const { a } = ready();
  assertReaches(a, a.beakerAddress, HTTP_PORT_ALLOWED, "beaker");
});

test("egress: allow-listed host and CIDR ports work, a port not on the allow-list is refused", () => {
  const { a } = ready();
  assertReaches(
    a,
    a.beakerAddress,
    HTTP_PORT_ALLOWED,
    "beaker.e2e.example.com:80 (allowed by host)",
  );
  assertReaches(
    a,
    CIDR_HOST,
    CIDR_PORT,
    "203.0.113.64/26:8080 (allowed by CIDR)",
  );
  const denied = workerGet(a.beakerAddress, HTTP_PORT_DENIED);
  assert.not.ok(
    denied.ok,
    `port ${HTTP_PORT_DENIED} is not allow-listed but answered: ${denied.body}`,
  );
  assert.is(
    denied.status,
    7,
    `a refused port must be refused at once (curl exit 7), got exit ${denied.status}: ${denied.err}`,
  );
  const deniedCidr = workerGet(CIDR_HOST, HTTP_PORT_ALLOWED);
  assert.not.ok(
    deniedCidr.ok,
    `${CIDR_HOST}:${HTTP_PORT_ALLOWED} is not allow-listed but answered`,
  );
});

test("vpn-up twice leaves exactly the rules of one vpn-up", () => {
  const { a } = ready();
  const once = rules();
  dispatch(a.tunnel, "vpn-up");
  assert.fixture(rules(), once, "a second vpn-up changed the rule set");
  dispatch(a.tunnel, "up");
  assert.fixture(
    rules(),
    once,
    "an 'up' event after vpn-up changed the rule set",
  );
  assertReaches(
    a,
    a.beakerAddress,
    HTTP_PORT_ALLOWED,
    "after the repeated vpn-up",
  );
});

test("a Docker restart (its chains flushed, recreated, jumps first again) keeps the path working", () => {
  const { a } = ready();
  const before = chainRules("filter", `GENLAB-FWD-${a.name}`);
  dockerRestart();
  const forward = chainRules("filter", "FORWARD")!
    .split("\n")
    .filter((l) => l.startsWith("-A"));
  assert.equal(
    forward.slice(0, 2),
    ["-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD"],
    "Docker's jumps must come first after its restart",
  );
  assert.ok(
    forward.includes(`-A FORWARD -j GENLAB-FWD-${a.name}`),
    "the lab's jump survived",
  );
  assert.is(
    chainRules("filter", `GENLAB-FWD-${a.name}`),
    before,
    "Docker must not touch the lab's chain",
  );
  assertReaches(
    a,
    a.beakerAddress,
    HTTP_PORT_ALLOWED,
    "after a Docker restart",
  );
  assert.is(
    workerGet(a.beakerAddress, HTTP_PORT_DENIED).status,
    7,
    "the allow-list still applies",
  );
});

test("two labs on one runner: taking one lab's tunnel down leaves the other's traffic flowing", async () => {
  const { a, b, nsdir, servers } = ready();
  const vpnB = startVpnServer(
    b,
    path.join(nsdir, "keys", path.basename(b.tunnel.staticKey)),
  );
  servers.set(`vpn-${b.name}`, vpnB);
  await waitFor("lab b's OpenVPN server", () => {
    if (vpnB.exited) throw new Error(tail(vpnB));
    return serverListens(vpnB) > 0;
  });
  deploy(b, nsdir, "networkmanager");
  nmcli([
    "connection",
    "load",
    ...[b.tunnel.vpnFile, b.tunnel.uplinkFile].map(
      (f) => `/etc/NetworkManager/system-connections/${path.basename(f)}`,
    ),
  ]);
  nmcli(["--wait", "25", "connection", "up", b.tunnel.vpnId]);
  await waitVpnUp(b);
  assertReaches(b, b.beakerAddress, HTTP_PORT_ALLOWED, "lab b");
  assertReaches(a, a.beakerAddress, HTTP_PORT_ALLOWED, "lab a, with lab b up");

  await assertDownSparesOther(a, b, "a", "b");
  nmcli(["--wait", "25", "connection", "up", a.tunnel.vpnId]);
  await waitVpnUp(a);
  await assertDownSparesOther(b, a, "b", "a");
});

/** Take `down` down: `other`'s chains stay exactly as they were and its traffic keeps flowing. */
async function assertDownSparesOther(
  down: LabSide,
  other: LabSide,
  downLabel: string,
  otherLabel: string,
): Promise<void> {
  const chainsOf = (lab: LabSide) => [
    chainRules("filter", `GENLAB-FWD-${lab.name}`),
    chainRules("nat", `GENLAB-NAT-${lab.name}`),
  ];
  const before = chainsOf(other);
  await takeDown(down);
  assert.equal(
    chainsOf(other),
    before,
    `lab ${downLabel}'s vpn-down touched lab ${otherLabel}'s rules`,
  );
  assertReaches(
    other,
    other.beakerAddress,
    HTTP_PORT_ALLOWED,
    `lab ${otherLabel}, with lab ${downLabel} down`,
  );
  const refused = workerGet(down.beakerAddress, HTTP_PORT_ALLOWED, 5);
  assert.is(
    refused.status,
    7,
    `lab ${downLabel} is down: its intranet must be refused at once (curl exit 7), not time out (28): ${refused.err}`,
  );
}

test("the lab cannot open a connection to a worker through the tunnel, even where FORWARD accepts (a runner without Docker)", async () => {
  // Lab b: no allow-list, whose rules would also turn away a worker's answers into the
  // intranet. Here only the rule against connections from the lab stands in the way.
  const { b } = ready();
  nmcli(["--wait", "25", "connection", "up", b.tunnel.vpnId]);
  await waitVpnUp(b);
  // Someone in the lab routes the worker subnet into its end of the tunnel and connects to a
  // worker port nothing listens on, from an intranet address: the worker subnet's routes send
  // the answer back through the runner. A worker that gets the SYN refuses at once (curl exit
  // 7); one the runner drops it for never answers (curl exit 28).
  const labEnd = sh(inNs(NS.lab, ["ip", "-o", "-4", "addr", "show"]))
    .stdout.split("\n")
    .map((l) => /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(l))
    .find((m) => m && m[2]!.split("/")[0] === b.tunnel.remoteIp)?.[1];
  assert.ok(labEnd, `no interface of the lab carries ${b.tunnel.remoteIp}`);
  const labConnects = () =>
    sh(
      inNs(NS.lab, [
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--connect-timeout",
        "2",
        "--interface",
        b.beakerAddress,
        `http://${b.workerAddress}:9/`,
      ]),
      { allowFail: true, timeoutMs: 10_000 },
    ).status;
  const ipt = (...args: string[]) =>
    sh(inNs(NS.runner, ["iptables", "-w", "5", ...args]));
  const policy = /^-P FORWARD (\S+)/m.exec(
    chainRules("filter", "FORWARD")!,
  )![1]!;
  sh(inNs(NS.lab, ["ip", "route", "replace", b.workerSubnet, "dev", labEnd!]));
  ipt("-t", "filter", "-P", "FORWARD", "ACCEPT");
  // The fail-fast chain refuses every packet from the workers into the intranet, the worker's
  // refusal too: out of the way for the control case.
  const reject = [
    "-t",
    "filter",
    "-D",
    "FORWARD",
    "-j",
    `GENLAB-REJ-${b.name}`,
  ];
  try {
    assert.is(dispatch(b.tunnel, "vpn-down").status, 0);
    ipt(...reject);
    assert.is(
      labConnects(),
      7,
      "without the lab's rules this runner forwards it, and the worker refuses",
    );
    reject[2] = "-A";
    ipt(...reject);
    const up = dispatch(b.tunnel, "vpn-up");
    assert.is(up.status, 0, up.stderr);
    assert.is(labConnects(), 28, "after vpn-up the runner drops it");
    assertReaches(
      b,
      b.beakerAddress,
      HTTP_PORT_ALLOWED,
      "lab b, the lab's route in place",
    );
  } finally {
    ipt("-t", "filter", "-P", "FORWARD", policy);
    sh(inNs(NS.lab, ["ip", "route", "del", b.workerSubnet, "dev", labEnd!]), {
      allowFail: true,
    });
    await takeDown(b);
  }
});

test("DNS: a worker resolves an intranet name through the runner's address (DNSStubListenerExtra), answered by the lab's DNS through the tunnel", () => {
  const { a, lanDns, resolved, runner } = ready();
  const wanted = workerResolved(a.userData);
  assert.equal(
    wanted.dns,
    [a.runnerAddress],
    "the workers' DNS= must be their runner",
  );
  assert.equal(
    wanted.domains,
    a.yaml.intranet.domains.map((d: string) => `~${d}`),
  );
  // NetworkManager (dns=systemd-resolved) gave resolved the tunnel's DNS server and routing
  // domain from the generated keyfile; the test never sets them.
  const tun = tunnelInterface(a.tunnel)!;
  const rctl = (...args: string[]) =>
    sh(inRunner([resolved.resolvectl, ...args]), {
      env: { ...runner.env, LD_LIBRARY_PATH: resolved.libDir },
    }).stdout;
  const linkDns = rctl("dns", tun);
  for (const ns of a.tunnel.dns)
    assert.ok(linkDns.includes(ns), `resolved: DNS of ${tun}: ${linkDns}`);
  const linkDomains = rctl("domain", tun);
  for (const d of a.tunnel.dnsSearch)
    assert.ok(
      linkDomains.includes(d),
      `resolved: domains of ${tun}: ${linkDomains}`,
    );

  const probe = `${PROBE_LABEL}.${a.yaml.intranet.domains[0]}`;
  const lookup = resolveA(NS.worker, wanted.dns[0]!, probe);
  assert.is(
    lookup.stdout.trim(),
    probeAddress(a),
    `worker: ${probe} via ${wanted.dns[0]} -> ${lookup.stdout}${lookup.stderr}\n${diagnostics()}`,
  );
  // Only this lookup asks for that name: the lab's DNS server got it from the runner's tunnel address.
  const asked = fs
    .readFileSync(lanDns.log, "utf8")
    .split("\n")
    .filter((l) => l.includes(`query[A] ${probe} `));
  assert.ok(
    asked.length > 0,
    "the lab's DNS server never saw the worker's query",
  );
  for (const l of asked)
    assert.ok(
      l.endsWith(` from ${a.tunnel.localIp}`),
      `the query did not come over the tunnel: ${l}`,
    );
  // A name outside the intranet domains is not sent into the lab.
  const outside = sh(
    inNs(NS.worker, [
      process.execPath,
      "-e",
      `const r = new (require("node:dns").promises.Resolver)({ timeout: 1000, tries: 1 });
       r.setServers([process.argv[1]]);
       r.resolve4(process.argv[2]).then((a) => console.log(a.join(" ")), (e) => { console.error(e.code); process.exit(1); });`,
      wanted.dns[0]!,
      `${PROBE_LABEL}.example.net`,
    ]),
    { allowFail: true },
  );
  assert.not.ok(
    outside.status === 0,
    `a name outside the intranet resolved: ${outside.stdout}`,
  );
  assert.not.ok(
    fs.readFileSync(lanDns.log, "utf8").includes(`${PROBE_LABEL}.example.net`),
    "a name outside the intranet domains reached the lab's DNS server",
  );
});

test("vpn-down and down remove exactly the lab's rules: iptables-save is back to the state before vpn-up", async () => {
  const { a, b, baseline } = ready();
  await takeDown(a);
  const down = rules();
  // Lab b's fail-fast chain, installed at its first vpn-up, stays (as lab a's did since its uplink came up).
  assert.fixture(
    down
      .split("\n")
      .filter((l) => !l.includes(`GENLAB-REJ-${b.name}`))
      .join("\n"),
    baseline,
    "after vpn-down (by NetworkManager) the rules differ from before the first vpn-up",
  );

  nmcli(["--wait", "25", "connection", "up", a.tunnel.vpnId]);
  await waitVpnUp(a);
  assert.is.not(rules(), down);
  dispatch(a.tunnel, "down");
  assert.fixture(
    rules(),
    down,
    "'down' did not restore the rules of before vpn-up",
  );
  dispatch(a.tunnel, "vpn-up");
  assertReaches(a, a.beakerAddress, HTTP_PORT_ALLOWED, "after down + vpn-up");
  dispatch(a.tunnel, "vpn-down");
  assert.fixture(
    rules(),
    down,
    "'vpn-down' did not restore the rules of before vpn-up",
  );
  dispatch(a.tunnel, "vpn-down");
  assert.fixture(rules(), down, "a second vpn-down must change nothing");
});

test.run();
