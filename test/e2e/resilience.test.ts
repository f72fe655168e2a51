/**
 * The tunnel in the real world, by fault injection (issue 21): a lab that is down when the
 * runner boots, a credential not in SSM yet, the lab's endpoint restarting, NetworkManager
 * restarting, the uplink bouncing, and a second lab on the same runner.
 *
 *   worker ──veth── runner ──veth(ens5, DHCP)── lab + "internet"
 *   198.18.4.10      198.18.0.10 (vpc0)          198.51.100.1   OpenVPN servers (TLS): rs udp/1194, rsb tcp/1195
 *   198.18.8.10      198.18.0.26                 198.51.100.80  a GitLab stand-in, outside every tunnel
 *                    eth1 (a second interface)   203.0.113.0/24 (rs), 192.0.2.0/24 (rsb) on lo: web, DNS
 *
 * Both labs are generated from test/e2e/lab-tls.yaml and lab-tls-b.yaml by the built CLI and
 * deployed as a runner has them: a real NetworkManager (with NetworkManager-openvpn) loads the
 * generated profiles, its dispatcher runs the generated hook, and the generated tunnel keeper of
 * each lab runs as its unit would, with the generated boot script fetching the credentials
 * through the real AWS CLI from an SSM stand-in on the runner's loopback. Only `systemctl` is a
 * stand-in (it records the keeper's calls): there is no systemd in a namespace.
 *
 * Every case asserts what a worker sees (its HTTP requests into the intranet, its DNS) and
 * reports how long the path took to come back. GEN_LAB_E2E_REPEAT=n repeats the restart cases
 * n times, for the recovery times of docs/resilience.md.
 *
 * Needs root and network namespaces; without them it fails (it never skips).
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
  sleep,
  startDaemon,
  tail,
  waitFor,
  type Daemon,
} from "./harness.js";
import { readKeyfile, need, stubListenerExtra } from "./generated.js";
import { fetchResolved } from "./resolved.js";
import {
  inNs,
  DNSMASQ,
  httpGet,
  iptablesSave,
  prepareRunner,
  resolveA,
  requireEnvironment,
  startRunner,
  type Runner,
  veth,
} from "./runner.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BIN = path.join(ROOT, "bin", "gen-lab.js");
const started = Date.now();

const suffix = randomBytes(3).toString("hex");
const NS = {
  lab: `gl-rl-lab-${suffix}`,
  runner: `gl-rl-run-${suffix}`,
  worker: `gl-rl-wrk-${suffix}`,
};
const UPLINK = "ens5"; // a Nitro instance's name for its interface: the profile names none
const SECOND = "eth1"; // a second interface the uplink profile must never take
const GITLAB = "198.51.100.80"; // outside every tunnel
const ENDPOINT = "198.51.100.1";
const OUTAGE_S = Number(process.env.GEN_LAB_E2E_OUTAGE ?? 300); // longer than every NM timeout and retry budget
const PUT_CREDENTIAL_AFTER_S = 60;
const AWAY_S = 75; // the endpoint's restart: longer than the keep-alive and the keeper's probes
const REPEAT = Math.max(1, Number(process.env.GEN_LAB_E2E_REPEAT ?? 1));
/** The issue's bound: a returning lab carries the workers' traffic again within this. */
const RECOVERY_MS = 60_000;

/** The routes the lab's server of rs pushes to take the runner's own traffic. */
const HOSTILE_ROUTES = [
  ["0.0.0.0", "128.0.0.0"],
  ["128.0.0.0", "128.0.0.0"],
  ["198.18.0.0", "255.255.0.0"], // the VPC
  ["198.18.4.0", "255.255.255.0"], // inside the worker subnet
  ["169.254.169.254", "255.255.255.255"], // the instance metadata service
  [GITLAB, "255.255.255.255"],
] as const;

interface Lab {
  name: string;
  rootfs: string;
  vpnId: string;
  uplinkId: string;
  device: string;
  port: number;
  tcp: boolean;
  pool: string; // the server's client pool (--server)
  beakerHost: string;
  beakerAddress: string;
  dnsAddress: string;
  cidr: string;
  workerSubnet: string;
  workerAddress: string;
  runnerAddress: string;
  keeper: string;
  stateFile: string;
  /** SSM parameter -> the file it becomes on the runner, from the generated boot script. */
  credentials: { parameter: string; file: string }[];
  pki: Record<
    "ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey",
    string
  >;
  server?: Daemon;
  keeperDaemon?: Daemon;
  stubLog: string;
}

interface State {
  tmp: string;
  runner: Runner;
  rs: Lab;
  rsb: Lab;
  dns: Daemon;
  ssmStore: string;
  firstUp: string; // iptables-save after both tunnels' first up
  times: Record<string, number[]>; // recovery times, ms
}
let S: State | undefined;
let setupError: Error | undefined;

function ready(): State {
  if (!S)
    throw new Error(
      `the runner was not set up, so this cannot be checked: ${setupError?.message.split("\n")[0] ?? "setup did not run"}`,
    );
  return S;
}

// ---------------------------------------------------------------- what the worker and runner see

/** An HTTP GET from the worker. curl exit 7 = refused or unreachable, 28 = timeout. */
function workerGet(address: string, timeoutS = 3) {
  const r = httpGet(NS.worker, `http://${address}/`, timeoutS);
  return { status: r.status, client: r.json?.client, err: r.err.trim() };
}

/** A name looked up by the worker, asking its runner (the worker's DNS= in its cloud-config). */
function workerResolve(lab: Lab): string {
  const r = resolveA(NS.worker, lab.runnerAddress, lab.beakerHost);
  return r.stdout.trim() || r.stderr.trim();
}

/** The worker reaches the lab's Beaker through the tunnel, masqueraded to the runner's tunnel address. */
function workerReaches(lab: Lab): boolean {
  const r = workerGet(lab.beakerAddress, 2);
  return r.status === 0 && r.client !== undefined && inPool(lab, r.client);
}

function inPool(lab: Lab, address: string): boolean {
  return address.startsWith(lab.pool.split(".").slice(0, 3).join(".") + ".");
}

function runnerReachesGitLab(): boolean {
  return httpGet(NS.runner, `http://${GITLAB}/`).ok;
}

const rules = () => iptablesSave(NS.runner);

/** The keeper's state file ("up ..." or "down <why>"), and when it was last written. */
function keeperState(lab: Lab): string {
  return keeperStateAt(lab).text;
}
function keeperStateAt(lab: Lab): { text: string; at: number } {
  const file = `/proc/${ready().runner.holder.pid}/root${lab.stateFile}`;
  try {
    return {
      text: fs.readFileSync(file, "utf8").trim(),
      at: fs.statSync(file).mtimeMs,
    };
  } catch {
    return { text: "(no state file)", at: 0 };
  }
}

function diagnostics(): string {
  if (!S) return "";
  const parts = [`--- runner rules\n${rules()}`];
  for (const name of [
    "NetworkManager",
    "keeper-rs",
    "keeper-rsb",
    "nm-dispatcher",
  ]) {
    const f = path.join(S.tmp, "logs", `${name}.log`);
    if (fs.existsSync(f))
      parts.push(
        `--- ${name} (last lines)\n${fs.readFileSync(f, "utf8").split("\n").slice(-25).join("\n")}`,
      );
  }
  return parts.join("\n");
}

/** Wait (hang guard: the 60 s) until the worker reaches the lab again; the time it took. */
async function recovery(
  lab: Lab,
  since: number,
  what: string,
): Promise<number> {
  try {
    await waitFor(
      `the worker to reach ${lab.name}'s intranet ${what}`,
      () => workerReaches(lab),
      Math.max(0, RECOVERY_MS - (Date.now() - since)),
      250,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${diagnostics()}`);
  }
  const ms = Date.now() - since;
  (ready().times[what] ??= []).push(ms);
  console.log(
    `  ${lab.name}: ${what}: traffic back after ${(ms / 1000).toFixed(1)} s`,
  );
  return ms;
}

/** The keeper and the worker agree the lab is up, its DNS answers, and the rules are those of a first up. */
async function assertBack(
  lab: Lab,
  since: number,
  what: string,
): Promise<void> {
  const s = ready();
  await waitFor(`${lab.name}'s keeper to report the tunnel up ${what}`, () => {
    const state = keeperStateAt(lab);
    return state.text.startsWith("up ") && state.at >= since - 1000;
  });
  assert.is(
    workerResolve(lab),
    lab.beakerAddress,
    `${what}: the worker resolves ${lab.beakerHost} through its runner`,
  );
  if (s.firstUp !== "")
    assert.fixture(
      rules(),
      s.firstUp,
      `${what}: iptables-save differs from its state after the first up`,
    );
}

// ---------------------------------------------------------------- the lab

const openssl = (args: readonly string[]) => sh(["openssl", ...args]);

/** A CA of the lab, its VPN server's certificate (serverAuth) and the runner's (clientAuth). */
function makePki(dir: string, lab: string, runner: string): Lab["pki"] {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const key = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
  ];
  openssl([
    "req",
    "-x509",
    ...key,
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.crt"),
    "-days",
    "2",
    "-subj",
    `/CN=${lab} lab CA`,
  ]);
  for (const [name, usage] of [
    ["server", "serverAuth"],
    [runner, "clientAuth"],
  ] as const) {
    openssl([
      "req",
      ...key,
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.csr`),
      "-subj",
      `/CN=${name}`,
    ]);
    fs.writeFileSync(
      f(`${name}.ext`),
      `extendedKeyUsage=${usage}\nkeyUsage=digitalSignature,keyAgreement\n`,
    );
    openssl([
      "x509",
      "-req",
      "-in",
      f(`${name}.csr`),
      "-CA",
      f("ca.crt"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-out",
      f(`${name}.crt`),
      "-days",
      "2",
      "-extfile",
      f(`${name}.ext`),
    ]);
  }
  return {
    ca: f("ca.crt"),
    serverCert: f("server.crt"),
    serverKey: f("server.key"),
    clientCert: f(`${runner}.crt`),
    clientKey: f(`${runner}.key`),
  };
}

/** The lab's OpenVPN server (TLS), as a lab runs one: keepalive, its DNS, and, for rs, hostile routes. */
function startVpnServer(lab: Lab): Daemon {
  const argv = [
    "openvpn",
    "--server",
    lab.pool,
    "255.255.255.0",
    "--topology",
    "subnet",
    "--dev",
    `tun-srv-${lab.name}`,
    "--local",
    ENDPOINT,
    "--port",
    String(lab.port),
    "--proto",
    lab.tcp ? "tcp-server" : "udp",
    "--ca",
    lab.pki.ca,
    "--cert",
    lab.pki.serverCert,
    "--key",
    lab.pki.serverKey,
    "--dh",
    "none",
    "--keepalive",
    "10",
    "60",
    "--push",
    `dhcp-option DNS ${lab.dnsAddress}`,
    "--push",
    `route ${lab.cidr.split("/")[0]} 255.255.255.0`,
    ...(lab.name === "rs"
      ? HOSTILE_ROUTES.flatMap(([net, mask]) => [
          "--push",
          `route ${net} ${mask}`,
        ])
      : []),
    "--verb",
    "4",
  ];
  const d = startDaemon(`openvpn-server-${lab.name}`, inNs(NS.lab, argv));
  lab.server = d;
  return d;
}

async function serverListening(lab: Lab): Promise<void> {
  const d = lab.server!;
  await waitFor(`${lab.name}'s OpenVPN server`, () => {
    if (d.exited) throw new Error(tail(d));
    return /Initialization Sequence Completed/.test(
      fs.readFileSync(d.log, "utf8"),
    );
  });
}

async function stopVpnServer(lab: Lab, signal: NodeJS.Signals): Promise<void> {
  const d = lab.server!;
  process.kill(-d.pid, signal);
  await waitFor(`${lab.name}'s OpenVPN server to stop`, () => d.exited);
  lab.server = undefined;
}

/** Put one SSM parameter into the stand-in's store, as `aws ssm put-parameter` would. */
function putParameter(store: string, name: string, file: string): void {
  const parameters = JSON.parse(fs.readFileSync(store, "utf8")) as Record<
    string,
    string
  >;
  parameters[name] = fs.readFileSync(file).toString("base64");
  fs.writeFileSync(`${store}.tmp`, JSON.stringify(parameters));
  fs.renameSync(`${store}.tmp`, store);
}

// ---------------------------------------------------------------- setup

function readLab(out: string, file: string, pool: string, pkiDir: string): Lab {
  const yaml = parseYaml(fs.readFileSync(file, "utf8"));
  const name: string = yaml.name;
  const runner = yaml.runners[0];
  const rootfs = path.join(out, name, "runners", runner.name, "rootfs");
  const vpnFile = path.join(
    rootfs,
    `etc/NetworkManager/system-connections/${name}-vpn.nmconnection`,
  );
  const uplinkFile = path.join(
    rootfs,
    `etc/NetworkManager/system-connections/${name}-uplink.nmconnection`,
  );
  const vpn = readKeyfile(vpnFile);
  const uplink = readKeyfile(uplinkFile);
  assert.is(
    uplink["connection"]?.["interface-name"],
    undefined,
    "the uplink names no interface",
  );
  assert.is(
    uplink["connection"]?.["secondaries"],
    undefined,
    "the uplink starts no tunnel",
  );
  assert.ok(
    need(uplink, uplinkFile, "match", "interface-name")
      .split(";")
      .includes(UPLINK),
    `the uplink matches ${UPLINK}`,
  );
  const boot = fs.readFileSync(
    path.join(rootfs, `usr/local/sbin/gen-lab-${name}-boot`),
    "utf8",
  );
  // The boot script's `readonly PARAMETERS=( ... )` and `readonly FILES=( ... )`.
  const list = (v: string) =>
    (new RegExp(`^readonly ${v}=\\((.*)\\)$`, "m").exec(boot)?.[1] ?? "")
      .trim()
      .split(/\s+/)
      .filter((w) => w !== "");
  const parameters = list("PARAMETERS");
  const files = list("FILES");
  assert.is(
    parameters.length,
    3,
    `${name}: the boot script fetches ca, cert and key`,
  );
  const keeperPath = `/usr/local/sbin/gen-lab-${name}-tunnel`;
  const keeper = fs.readFileSync(path.join(rootfs, keeperPath), "utf8");
  const intranet = (yaml.intranet.cidrs[0] as string)
    .split("/")[0]!
    .split(".")
    .map(Number);
  const at = (last: number) => [...intranet.slice(0, 3), last].join(".");
  const subnet: string = yaml.aws.zones["us-east-1a"].worker_subnet;
  const w = subnet.split("/")[0]!.split(".").map(Number);
  w[3] = w[3]! + 10;
  return {
    name,
    rootfs,
    vpnId: need(vpn, vpnFile, "connection", "id"),
    uplinkId: need(uplink, uplinkFile, "connection", "id"),
    device: need(vpn, vpnFile, "vpn", "dev"),
    port: Number(need(vpn, vpnFile, "vpn", "port")),
    tcp: vpn["vpn"]?.["proto-tcp"] === "yes",
    pool,
    beakerHost: new URL(yaml.beaker.url).hostname,
    beakerAddress: at(10),
    dnsAddress: at(53),
    cidr: yaml.intranet.cidrs[0],
    workerSubnet: subnet,
    workerAddress: w.join("."),
    runnerAddress: runner.address,
    keeper: keeperPath,
    stateFile: /^readonly STATE_FILE=(\S+)$/m.exec(keeper)![1]!,
    credentials: parameters.map((parameter, i) => ({
      parameter,
      file: files[i]!,
    })),
    pki: makePki(pkiDir, name, runner.name),
    stubLog: "",
  };
}

/** The local file (of the lab's PKI) a runner credential stands for. */
function localFile(lab: Lab, runnerFile: string): string {
  if (runnerFile.endsWith("ca.crt")) return lab.pki.ca;
  return runnerFile.endsWith(".crt") ? lab.pki.clientCert : lab.pki.clientKey;
}

function deploy(lab: Lab, dir: string): void {
  for (const rel of [
    `etc/NetworkManager/system-connections/${lab.name}-vpn.nmconnection`,
    `etc/NetworkManager/system-connections/${lab.name}-uplink.nmconnection`,
    `etc/NetworkManager/dispatcher.d/90-gen-lab-${lab.name}`,
    `etc/systemd/resolved.conf.d/90-gen-lab-${lab.name}.conf`,
    `usr/local/sbin/gen-lab-${lab.name}-boot`,
    `usr/local/sbin/gen-lab-${lab.name}-tunnel`,
  ]) {
    const src = path.join(lab.rootfs, rel);
    const dst = path.join(dir, "rootfs", rel);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(src, dst);
    fs.chmodSync(dst, fs.statSync(src).mode & 0o7777);
  }
}

/** The generated keeper, run as its unit runs it; `systemctl` is a stand-in that records its calls. */
function startKeeper(
  s: { tmp: string; runner: Runner },
  lab: Lab,
  ssmPort: string,
): Daemon {
  const stubs = path.join(s.tmp, "stubs");
  fs.mkdirSync(stubs, { recursive: true });
  fs.writeFileSync(
    path.join(stubs, "systemctl"),
    '#!/bin/sh\necho "$(date +%s) systemctl $*" >>"$STUB_LOG"\n',
    { mode: 0o755 },
  );
  lab.stubLog = path.join(s.tmp, `systemctl-${lab.name}.log`);
  fs.writeFileSync(lab.stubLog, "");
  const d = startDaemon(
    `keeper-${lab.name}`,
    s.runner.run([
      "env",
      "-i",
      `PATH=${stubs}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      `STUB_LOG=${lab.stubLog}`,
      `DBUS_SYSTEM_BUS_ADDRESS=${s.runner.env.DBUS_SYSTEM_BUS_ADDRESS}`,
      `HOME=${s.tmp}`,
      "LANG=C.UTF-8",
      // The boot script's AWS CLI asks the SSM stand-in (the instance role's place: keys that it does not check).
      `AWS_ENDPOINT_URL_SSM=http://127.0.0.1:${ssmPort}`,
      "AWS_ACCESS_KEY_ID=AKIASTANDIN",
      "AWS_SECRET_ACCESS_KEY=stand-in",
      "AWS_EC2_METADATA_DISABLED=true",
      lab.keeper,
    ]),
  );
  lab.keeperDaemon = d;
  return d;
}

async function setup(): Promise<State> {
  requireEnvironment(suffix, ["openssl", "/usr/bin/aws"]);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-e2e-rs-"));
  fs.mkdirSync(path.join(tmp, "logs"));
  setLogDir(path.join(tmp, "logs"));

  // 1. Both labs, generated by the built CLI; the labs' PKI.
  const out = path.join(tmp, "out");
  sh([
    process.execPath,
    BIN,
    path.join(HERE, "lab-tls.yaml"),
    path.join(HERE, "lab-tls-b.yaml"),
    "-o",
    out,
  ]);
  const rs = readLab(
    out,
    path.join(HERE, "lab-tls.yaml"),
    "198.19.10.0",
    path.join(tmp, "pki-rs"),
  );
  const rsb = readLab(
    out,
    path.join(HERE, "lab-tls-b.yaml"),
    "198.19.11.0",
    path.join(tmp, "pki-rsb"),
  );
  for (const lab of [rs, rsb])
    assert.equal(stubListenerExtra(lab.rootfs, lab.name), [lab.runnerAddress]);
  const resolved = fetchResolved();

  // 2. The runner's files as deployed.
  const dir = path.join(tmp, "runner");
  prepareRunner(dir, ["vpc0"]);
  deploy(rs, dir);
  deploy(rsb, dir);

  // 3. Namespaces and links.
  for (const ns of [NS.lab, NS.runner, NS.worker]) addNamespace(ns);
  veth("up0", NS.lab, UPLINK, NS.runner);
  veth("up1", NS.lab, SECOND, NS.runner);
  veth("eth0", NS.worker, "vpc0", NS.runner);
  const ip = (ns: string, ...a: string[]) => sh(["ip", "-n", ns, ...a]);
  ip(NS.lab, "addr", "add", `${ENDPOINT}/24`, "dev", "up0");
  ip(NS.lab, "addr", "add", `${GITLAB}/24`, "dev", "up0");
  ip(NS.lab, "link", "set", "up0", "up");
  ip(NS.lab, "link", "set", "up1", "up");
  for (const lab of [rs, rsb])
    for (const h of [lab.beakerAddress, lab.dnsAddress])
      ip(NS.lab, "addr", "add", `${h}/32`, "dev", "lo");
  ip(NS.runner, "link", "set", "vpc0", "up");
  ip(NS.worker, "link", "set", "eth0", "up");
  for (const lab of [rs, rsb]) {
    ip(NS.runner, "addr", "add", `${lab.runnerAddress}/32`, "dev", "vpc0");
    ip(
      NS.runner,
      "route",
      "add",
      lab.workerSubnet,
      "dev",
      "vpc0",
      "src",
      lab.runnerAddress,
    );
    ip(
      NS.worker,
      "addr",
      "add",
      `${lab.workerAddress}/${lab.workerSubnet.split("/")[1]}`,
      "dev",
      "eth0",
    );
    ip(
      NS.worker,
      "route",
      "add",
      `${lab.runnerAddress}/32`,
      "dev",
      "eth0",
      "src",
      lab.workerAddress,
    );
    ip(
      NS.worker,
      "route",
      "add",
      lab.cidr,
      "via",
      lab.runnerAddress,
      "src",
      lab.workerAddress,
    );
    sh(
      inNs(NS.runner, [
        "sysctl",
        "-q",
        "-p",
        path.join(lab.rootfs, `etc/sysctl.d/90-gen-lab-${lab.name}.conf`),
      ]),
    );
  }

  // 4. The lab's and the internet's services: DHCP for the uplink, DNS, web (Beaker, GitLab).
  startDaemon(
    "dnsmasq-dhcp",
    inNs(NS.lab, [
      ...DNSMASQ,
      "--port=0",
      "--interface=up0",
      "--bind-interfaces",
      "--dhcp-range=198.51.100.50,198.51.100.60,255.255.255.0,1h",
      `--dhcp-leasefile=${path.join(tmp, "dhcp.leases")}`,
    ]),
  );
  const dns = startDaemon(
    "dnsmasq-dns",
    inNs(NS.lab, [
      ...DNSMASQ,
      "--log-queries",
      "--port=53",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      ...[rs, rsb].flatMap((lab) => [
        `--listen-address=${lab.dnsAddress}`,
        `--local=/${lab.beakerHost.split(".").slice(1).join(".")}/`,
        `--host-record=${lab.beakerHost},${lab.beakerAddress}`,
      ]),
    ]),
  );
  const web = startDaemon(
    "web",
    inNs(NS.lab, [
      process.execPath,
      path.join(HERE, "lab-server.mjs"),
      `${rs.beakerAddress}:80`,
      `${rsb.beakerAddress}:80`,
      `${GITLAB}:80`,
    ]),
  );
  await waitFor("the lab's web servers", () => {
    if (web.exited) throw new Error(tail(web));
    return fs.readFileSync(web.log, "utf8").includes("ready");
  });
  await waitFor("the lab's DNS server", () => {
    if (dns.exited) throw new Error(tail(dns));
    return fs.readFileSync(dns.log, "utf8").includes("started");
  });
  // Lab rsb's endpoint is up; lab rs's is down (its maintenance window) when the runner boots.
  startVpnServer(rsb);
  await serverListening(rsb);

  // 5. SSM: every credential of rs; rsb's private key is not there yet.
  const ssmStore = path.join(tmp, "ssm.json");
  fs.writeFileSync(ssmStore, "{}");
  for (const lab of [rs, rsb])
    for (const c of lab.credentials)
      if (!(lab === rsb && c.file.endsWith(".key")))
        putParameter(ssmStore, c.parameter, localFile(lab, c.file));

  // 6. The runner: NetworkManager and friends, the SSM stand-in on its loopback, the keepers.
  const runner = await startRunner(NS.runner, dir, resolved);
  const state: State = {
    tmp,
    runner,
    rs,
    rsb,
    dns,
    ssmStore,
    firstUp: "",
    times: {},
  };
  S = state;
  const ssm = startDaemon(
    "ssm-stand-in",
    inNs(NS.runner, [
      process.execPath,
      path.join(ROOT, "test/support/ssm-stand-in.mjs"),
      ssmStore,
    ]),
  );
  const ssmPort = await waitFor("the SSM stand-in", () => {
    if (ssm.exited) throw new Error(tail(ssm));
    return /^(\d+)$/m.exec(fs.readFileSync(ssm.log, "utf8"))?.[1];
  });
  for (const lab of [rs, rsb]) startKeeper(state, lab, ssmPort);
  return state;
}

// ---------------------------------------------------------------- the cases

test.after(() => {
  if (S) {
    console.log(`  resilience logs: ${path.join(S.tmp, "logs")}`);
    for (const [what, ms] of Object.entries(S.times)) {
      const sorted = [...ms].sort((x, y) => x - y);
      const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
      console.log(
        `  recovery ${what}: n=${ms.length} median ${(median / 1000).toFixed(1)} s, max ${(sorted.at(-1)! / 1000).toFixed(1)} s`,
      );
    }
  }
  cleanup();
  if (S && !process.env.GEN_LAB_E2E_KEEP)
    fs.rmSync(S.tmp, { recursive: true, force: true });
  console.log(
    `  resilience test took ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});

test("setup: two TLS labs generated and deployed, NetworkManager and the tunnel keepers started", async () => {
  try {
    await setup();
  } catch (e) {
    setupError = e as Error;
    S = undefined;
    throw e;
  }
});

test(`lab rs down for ${OUTAGE_S} s from the runner's start and rsb's key put in SSM after ${PUT_CREDENTIAL_AFTER_S} s: the uplink stays up, rs fails fast and its runner stops, rsb comes up, rs comes back`, async () => {
  const s = ready();
  const { rs, rsb, runner } = s;
  const t0 = Date.now();
  let put = 0;
  let rsbBack = 0;
  const problems: string[] = [];
  let uplinkSeen = false;
  while (Date.now() - t0 < OUTAGE_S * 1000) {
    const t = ((Date.now() - t0) / 1000).toFixed(0);
    const device = runner.nmcli(
      ["-g", "GENERAL.STATE,GENERAL.CONNECTION", "device", "show", UPLINK],
      true,
    ).stdout;
    const up = /^100 /m.test(device);
    if (up) uplinkSeen = true;
    else if (uplinkSeen)
      problems.push(`${t} s: the uplink is not connected: ${device.trim()}`);
    if (uplinkSeen && !runnerReachesGitLab())
      problems.push(`${t} s: the runner cannot reach GitLab`);
    if (uplinkSeen) {
      const r = workerGet(rs.beakerAddress, 5);
      if (r.status !== 7)
        problems.push(
          `${t} s: a worker's request into rs's intranet ended with curl exit ${r.status}, not refused at once (7): ${r.err}`,
        );
    }
    if (!put && Date.now() - t0 >= PUT_CREDENTIAL_AFTER_S * 1000) {
      const key = rsb.credentials.find((c) => c.file.endsWith(".key"))!;
      assert.match(
        keeperState(rsb),
        /^down .*missing/,
        "rsb's keeper reports the missing credential",
      );
      putParameter(s.ssmStore, key.parameter, rsb.pki.clientKey);
      put = Date.now();
    }
    if (put && !rsbBack && workerReaches(rsb)) {
      rsbBack = Date.now();
      (s.times["credential put in SSM"] ??= []).push(rsbBack - put);
      console.log(
        `  rsb: credential put in SSM: traffic after ${((rsbBack - put) / 1000).toFixed(1)} s`,
      );
    }
    if (rsbBack && !workerReaches(rsb))
      problems.push(`${t} s: rsb's traffic stopped during rs's outage`);
    await sleep(4000);
  }
  assert.ok(uplinkSeen, `the uplink never came up\n${diagnostics()}`);
  if (put && !rsbBack) {
    // A short outage (GEN_LAB_E2E_OUTAGE) may end before rsb is up: wait for it here.
    await recovery(rsb, put, "credential put in SSM").catch(() => undefined);
    if (workerReaches(rsb)) rsbBack = Date.now();
  }
  assert.equal(problems, [], `${problems.join("\n")}\n${diagnostics()}`);
  assert.ok(
    rsbBack,
    `rsb never came up after its key was put in SSM\n${diagnostics()}`,
  );
  assert.ok(
    rsbBack - put <= RECOVERY_MS,
    `rsb took ${(rsbBack - put) / 1000} s after its key was put`,
  );
  const nmLog = fs.readFileSync(runner.nm.log, "utf8");
  assert.not.match(
    nmLog,
    new RegExp(`${UPLINK}\\): state change: \\S+ -> failed`),
    "NetworkManager never fails the uplink",
  );
  assert.not.match(
    nmLog,
    /SECONDARY_CONNECTION_FAILED|secondary-connection-failed/,
  );
  assert.match(
    keeperState(rs),
    /^down /,
    "rs's keeper reports the tunnel down",
  );
  assert.match(
    fs.readFileSync(rs.stubLog, "utf8"),
    /systemctl stop gitlab-runner\.service/,
    "rs's runner stopped taking jobs",
  );
  assert.match(
    fs.readFileSync(rsb.stubLog, "utf8"),
    /systemctl stop gitlab-runner\.service\n.*systemctl start gitlab-runner\.service\n$/,
    "rsb's runner stopped while its credential was missing, and took jobs again once its tunnel was up",
  );

  // The lab's endpoint returns.
  const back = Date.now();
  startVpnServer(rs);
  await serverListening(rs);
  await recovery(rs, back, "lab down at boot, back");
  assert.ok(workerReaches(rsb), "the other lab's traffic flows");
  await assertBack(rs, back, "after rs's first up");
  await assertBack(rsb, 0, "after rs's first up");
  assert.match(
    fs.readFileSync(rs.stubLog, "utf8"),
    /systemctl stop gitlab-runner\.service\n.*systemctl start gitlab-runner\.service/,
    "rs's runner takes jobs again",
  );
  s.firstUp = rules();
});

test("the lab cannot steer the runner: routes its server pushes are ignored; the uplink takes no second interface", () => {
  const { rs, runner } = ready();
  const pushed = fs.readFileSync(rs.server!.log, "utf8");
  assert.match(
    pushed,
    /PUSH_REPLY.*route 169\.254\.169\.254 255\.255\.255\.255/,
    "the server pushed the hostile routes",
  );
  const routes = sh(
    inNs(NS.runner, ["ip", "-4", "route", "show", "table", "all"]),
  ).stdout;
  const viaTunnel = routes
    .split("\n")
    .filter(
      (l) => l.includes(`dev ${rs.device} `) && !/^(local|broadcast) /.test(l),
    );
  for (const r of viaTunnel)
    assert.ok(
      r.startsWith(`${rs.cidr} `) || r.startsWith(`${rs.pool}/24 `),
      `a route into the tunnel the lab file does not name: ${r}\n${routes}`,
    );
  assert.ok(
    viaTunnel.some((r) => r.startsWith(`${rs.cidr} `)),
    `no route to ${rs.cidr} via ${rs.device}:\n${routes}`,
  );
  const dev = (to: string) =>
    /\bdev (\S+)/.exec(
      sh(inNs(NS.runner, ["ip", "-4", "route", "get", to])).stdout,
    )?.[1];
  assert.is(dev(GITLAB), UPLINK, "GitLab is reached over the uplink");
  assert.is(
    dev("169.254.169.254"),
    UPLINK,
    "the metadata service is not in the tunnel",
  );
  assert.is(
    dev(rs.workerAddress),
    "vpc0",
    "the workers are reached over the VPC",
  );
  assert.is(dev(rs.beakerAddress), rs.device, "the intranet is in the tunnel");
  assert.ok(runnerReachesGitLab());
  assert.ok(workerReaches(rs));
  const other = runner.nmcli(
    ["connection", "up", rs.uplinkId, "ifname", SECOND],
    true,
  );
  assert.is.not(other.status, 0, `the uplink profile came up on ${SECOND}`);
  assert.match(
    other.stderr,
    /match|not compatible|not available/i,
    other.stderr,
  );
});

for (let i = 1; i <= REPEAT; i++) {
  test(`lab rs's endpoint restarts and stays away ${AWAY_S} s: refused meanwhile, traffic back within 60 s, rules as after the first up (${i}/${REPEAT})`, async () => {
    const { rs, rsb } = ready();
    await stopVpnServer(rs, "SIGKILL");
    await sleep(AWAY_S * 1000);
    const r = workerGet(rs.beakerAddress, 5);
    assert.is(
      r.status,
      7,
      `during the outage: curl exit ${r.status}, not refused at once: ${r.err}\n${diagnostics()}`,
    );
    assert.match(keeperState(rs), /^down /);
    assert.ok(workerReaches(rsb), "the other lab's traffic flows");
    const back = Date.now();
    startVpnServer(rs);
    await serverListening(rs);
    await recovery(rs, back, "endpoint restart");
    await assertBack(rs, back, "after the endpoint's restart");
  });

  test(`NetworkManager restarts: both tunnels back within 60 s, rules as after the first up (${i}/${REPEAT})`, async () => {
    const { rs, rsb, runner } = ready();
    // As `systemctl restart NetworkManager` does: SIGTERM, then a new one. It ends the tunnels
    // as it quits (the clock starts once they are gone, not while packets still flow).
    process.kill(-runner.nm.pid, "SIGTERM");
    await waitFor("NetworkManager to stop", () => runner.nm.exited);
    await waitFor("the tunnels' devices to go", () =>
      [rs, rsb].every(
        (lab) =>
          sh(inNs(NS.runner, ["ip", "link", "show", lab.device]), {
            allowFail: true,
          }).status !== 0,
      ),
    );
    const back = Date.now();
    runner.startNetworkManager();
    await recovery(rs, back, "NetworkManager restart");
    await recovery(rsb, back, "NetworkManager restart");
    await assertBack(rs, back, "after NetworkManager's restart");
    await assertBack(rsb, back, "after NetworkManager's restart");
  });

  test(`the uplink bounces (carrier lost 10 s): both tunnels back within 60 s, rules as after the first up (${i}/${REPEAT})`, async () => {
    const { rs, rsb, runner } = ready();
    sh(["ip", "-n", NS.lab, "link", "set", "up0", "down"]);
    await waitFor(
      "NetworkManager to see the carrier gone",
      () =>
        !/^100 /m.test(
          runner.nmcli(["-g", "GENERAL.STATE", "device", "show", UPLINK], true)
            .stdout,
        ),
    );
    await sleep(10_000);
    sh(["ip", "-n", NS.lab, "link", "set", "up0", "up"]);
    const back = Date.now();
    await recovery(rs, back, "uplink bounce");
    await recovery(rsb, back, "uplink bounce");
    assert.ok(runnerReachesGitLab());
    await assertBack(rs, back, "after the uplink's bounce");
    await assertBack(rsb, back, "after the uplink's bounce");
  });
}

test.run();
