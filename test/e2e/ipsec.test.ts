/**
 * IPsec's NAT, in network namespaces: NetworkManager-libreswan makes no tunnel device. The
 * address the lab assigns (IKEv2 mode config) sits on the uplink, NetworkManager passes the
 * uplink as VPN_IP_IFACE and that address as VPN_IP4_ADDRESS_0, and libreswan's policy takes
 * only packets from that address into the tunnel. So the workers' packets must leave the runner
 * with that address as their source, not the uplink's own (which MASQUERADE would pick).
 *
 *   worker ──veth── runner ──veth(eth0)── lab
 *   198.18.4.10      198.18.0.10           198.51.100.1 (IPsec gateway)
 *                    + 192.0.2.77/32       203.0.113.10 on lo (intranet)
 *                      (tunnel address)    routes to 192.0.2.77 and, through it, the workers
 *
 * Servers on the lab and on the worker answer each connection with the source address they
 * saw. The encryption itself is not part of this test: ESP needs the kernel's esp4, which the
 * machines running the tests do not have (CONFIG_INET_ESP).
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
import {
  addNamespace,
  cleanup,
  setLogDir,
  sh,
  startDaemon,
  waitFor,
} from "./harness.js";
import { veth } from "./runner.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BIN = path.join(ROOT, "bin", "gen-lab.js");
const LAB = path.join(HERE, "lab-ipsec.yaml");

const suffix = randomBytes(3).toString("hex");
const NS = {
  lab: `gl-ilab-${suffix}`,
  runner: `gl-irun-${suffix}`,
  worker: `gl-iwrk-${suffix}`,
};
const TUNNEL_ADDRESS = "192.0.2.77";
const INTRANET_HOST = "203.0.113.10";
const PORT = 8080;
const WORKER = "198.18.4.10";
const WORKER_PORT = 8081;

let tmp = "";
let dispatcher = "";
let uuid = "";

const inNs = (ns: string, argv: readonly string[], allowFail = false) =>
  sh(["ip", "netns", "exec", ns, ...argv], { allowFail });
/**
 * Connect from a namespace to a server of the test, which answers with the source address it
 * saw: that address, or undefined when no connection was made within 2 s.
 */
const ask = (
  from: string,
  host: string,
  port: number,
  localAddress?: string,
): string | undefined => {
  const options = JSON.stringify({ host, port, localAddress });
  const r = inNs(
    from,
    [
      process.execPath,
      "-e",
      `const s = require("node:net").connect(${options});
       s.setTimeout(2000, () => process.exit(1));
       s.on("error", () => process.exit(1));
       let seen = "";
       s.on("data", (c) => (seen += c));
       s.on("end", () => process.stdout.write(seen.trim()));`,
    ],
    true,
  );
  return r.status === 0 && r.stdout !== "" ? r.stdout : undefined;
};
/** The source address the lab's server saw for a worker's connection, or undefined. */
const seenByLab = (from = NS.worker) => ask(from, INTRANET_HOST, PORT);
/** Whether a host of the intranet can open a connection to a worker through the runner. */
const labReachesWorker = () =>
  ask(NS.lab, WORKER, WORKER_PORT, INTRANET_HOST) !== undefined;
/** The lab's NAT rule set as iptables-save prints it, counters left out. */
const natRules = () =>
  inNs(NS.runner, ["iptables-save", "-t", "nat"])
    .stdout.split("\n")
    .filter((l) => l.startsWith("-A"));

function dispatch(event: string, env: Record<string, string>) {
  return inNs(
    NS.runner,
    [
      "env",
      `CONNECTION_UUID=${uuid}`,
      "VPN_IP_IFACE=eth0",
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      "bash",
      dispatcher,
      "eth0",
      event,
    ],
    true,
  );
}

test.after(() => {
  cleanup();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("setup: the generated dispatcher of an IPsec lab; runner, worker and lab namespaces", async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-ipsec-"));
  const out = path.join(tmp, "out");
  sh([process.execPath, BIN, LAB, "-o", out]);
  const runnerDir = path.join(out, "e2eipsec", "runners", "e2eipsec-1");
  dispatcher = path.join(
    runnerDir,
    "rootfs/etc/NetworkManager/dispatcher.d/90-gen-lab-e2eipsec",
  );
  const vpn = fs.readFileSync(
    path.join(
      runnerDir,
      "rootfs/etc/NetworkManager/system-connections/e2eipsec-vpn.nmconnection",
    ),
    "utf8",
  );
  uuid = /^uuid=(.+)$/m.exec(vpn)![1]!;

  for (const ns of Object.values(NS)) addNamespace(ns);
  veth("up0", NS.lab, "eth0", NS.runner);
  veth("eth0", NS.worker, "vpc0", NS.runner);
  const ip = (ns: string, ...a: string[]) => sh(["ip", "-n", ns, ...a]);
  ip(NS.worker, "addr", "add", "198.18.4.10/22", "dev", "eth0");
  ip(NS.worker, "link", "set", "eth0", "up");
  ip(NS.worker, "route", "add", "203.0.113.0/24", "via", "198.18.4.1");

  ip(NS.runner, "addr", "add", "198.18.4.1/22", "dev", "vpc0");
  ip(NS.runner, "link", "set", "vpc0", "up");
  ip(NS.runner, "addr", "add", "198.18.0.10/28", "dev", "eth0");
  ip(NS.runner, "link", "set", "eth0", "up");
  // What NetworkManager-libreswan leaves: the tunnel address on the uplink, and the intranet
  // routed from it towards the gateway.
  ip(NS.runner, "addr", "add", `${TUNNEL_ADDRESS}/32`, "dev", "eth0");
  ip(NS.runner, "route", "add", "198.51.100.1/32", "dev", "eth0");
  ip(NS.runner, "route", "add", "203.0.113.0/24", "via", "198.51.100.1");

  ip(NS.lab, "addr", "add", "198.51.100.1/24", "dev", "up0");
  ip(NS.lab, "link", "set", "up0", "up");
  ip(NS.lab, "addr", "add", `${INTRANET_HOST}/32`, "dev", "lo");
  // Replies go to the tunnel address only: nothing else of the runner is routed back. The
  // workers are routed through the runner, as a lab could route them.
  ip(NS.lab, "route", "add", `${TUNNEL_ADDRESS}/32`, "dev", "up0");
  ip(NS.lab, "route", "add", "198.18.4.0/22", "via", TUNNEL_ADDRESS);

  // The lab's server answers each connection with the source address it came from.
  setLogDir(tmp);
  const server = (name: string, ns: string, host: string, port: number) =>
    startDaemon(name, [
      "ip",
      "netns",
      "exec",
      ns,
      process.execPath,
      "-e",
      `require("node:net").createServer((s) => s.end(s.remoteAddress + "\\n")).listen(${port}, ${JSON.stringify(host)});`,
    ]);
  server("lab-server", NS.lab, INTRANET_HOST, PORT);
  server("worker-server", NS.worker, WORKER, WORKER_PORT);
  await waitFor("the worker's server", () =>
    ask(NS.worker, WORKER, WORKER_PORT),
  );
  await waitFor("the lab's server", () => seenByLab(NS.lab));
  assert.is(
    seenByLab(),
    undefined,
    "without the dispatcher's NAT no reply comes back",
  );
});

test("vpn-up NATs the workers to the tunnel address NetworkManager passes: the lab answers", () => {
  const r = dispatch("vpn-up", {
    VPN_IP4_ADDRESS_0: `${TUNNEL_ADDRESS}/32 0.0.0.0`,
  });
  assert.is(r.status, 0, r.stderr);
  assert.is(seenByLab(), TUNNEL_ADDRESS, "the lab sees the tunnel address");
});

test("the lab cannot open connections to the workers through the runner once the tunnel is up", () => {
  // This namespace's FORWARD policy is ACCEPT, as on a runner without Docker: only the hook's
  // own rule stops the lab. Before vpn-up, and without the fail-fast chain (which refuses the
  // worker's answer into the intranet too), it gets through.
  assert.is(dispatch("vpn-down", {}).status, 0);
  inNs(NS.runner, ["iptables", "-D", "FORWARD", "-j", "GENLAB-REJ-e2eipsec"]);
  assert.ok(labReachesWorker(), "before vpn-up the runner forwards it");
  const r = dispatch("vpn-up", {
    VPN_IP4_ADDRESS_0: `${TUNNEL_ADDRESS}/32 0.0.0.0`,
  });
  assert.is(r.status, 0, r.stderr);
  assert.not.ok(labReachesWorker(), "after vpn-up the runner drops it");
  assert.is(seenByLab(), TUNNEL_ADDRESS, "the workers still reach the lab");
  const nat = natRules().filter((l) => l.includes("GENLAB-NAT-"));
  assert.ok(
    nat.some((l) => l.includes(`--to-source ${TUNNEL_ADDRESS}`)),
    nat.join("\n"),
  );
  assert.not.ok(
    nat.some((l) => l.includes("MASQUERADE")),
    nat.join("\n"),
  );
});

test("without a tunnel address vpn-up refuses and leaves the rules alone; vpn-down removes them", () => {
  const before = natRules();
  const r = dispatch("vpn-up", {});
  assert.is(r.status, 1);
  assert.match(r.stderr, /no tunnel address from the lab/);
  assert.equal(natRules(), before);

  assert.is(dispatch("vpn-down", {}).status, 0);
  assert.equal(
    natRules().filter((l) => l.includes("GENLAB-")),
    [],
    "no rule of the lab left",
  );
  assert.is(
    seenByLab(),
    undefined,
    "no NAT any more: the workers' requests into the intranet are refused",
  );
  assert.match(
    inNs(NS.runner, ["iptables", "-S", "FORWARD"]).stdout,
    /^-A FORWARD -j GENLAB-REJ-e2eipsec$/m,
    "by the fail-fast chain, which stays",
  );
});

test.run();
