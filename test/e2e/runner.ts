/**
 * The runner of the end-to-end suites, as a real runner has it: in its own network namespace
 * and its own mount namespace (test/e2e/runner-ns.sh), a private system bus, a real
 * systemd-resolved (unpacked, never installed: resolved.ts), NetworkManager's dispatcher and
 * NetworkManager itself, which load the generated files deployed under <dir>/rootfs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { sh, startDaemon, tail, waitFor, type Daemon } from "./harness.js";
import type { Resolved } from "./resolved.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const inNs = (ns: string, argv: readonly string[]) => [
  "ip",
  "netns",
  "exec",
  ns,
  ...argv,
];

export interface Runner {
  ns: string;
  dir: string;
  holder: Daemon; // owns the runner's mount namespace
  env: NodeJS.ProcessEnv; // of the runner's daemons: the private bus
  nm: Daemon;
  /** A command inside the runner's network AND mount namespace. */
  run(argv: readonly string[]): string[];
  nmcli(args: readonly string[], allowFail?: boolean): ReturnType<typeof sh>;
  /** (Re)start NetworkManager, as systemd would after a crash or `systemctl restart`. */
  startNetworkManager(): Daemon;
}

/**
 * What runner-ns.sh mounts, under `dir`: the deployed rootfs directories, the runner's
 * /etc/resolv.conf (systemd-resolved's stub), /etc/passwd and /etc/group (with resolved's user),
 * its system bus and NetworkManager configuration. `unmanaged`: devices the test configures.
 */
export function prepareRunner(dir: string, unmanaged: readonly string[]): void {
  for (const d of [
    "rootfs/etc/NetworkManager/system-connections",
    "rootfs/etc/NetworkManager/dispatcher.d",
    "rootfs/etc/systemd/resolved.conf.d",
    "rootfs/usr/local/sbin",
    "keys",
    "nm-conf.d",
  ])
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(
    path.join(dir, "rootfs/etc/NetworkManager/system-connections"),
    0o700,
  );
  fs.writeFileSync(
    path.join(dir, "resolv.conf"),
    "# runner of the gen-lab end-to-end tests: systemd-resolved's stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
  );
  let passwd = fs.readFileSync("/etc/passwd", "utf8");
  let group = fs.readFileSync("/etc/group", "utf8");
  if (!/^systemd-resolve:/m.test(passwd) || !/^systemd-resolve:/m.test(group)) {
    const used = new Set(
      [...passwd.matchAll(/^[^:]*:[^:]*:(\d+):(\d+):/gm)].flatMap((m) => [
        m[1],
        m[2],
      ]),
    );
    for (const m of group.matchAll(/^[^:]*:[^:]*:(\d+):/gm)) used.add(m[1]);
    let id = 990;
    while (used.has(String(id))) id--;
    if (!/^systemd-resolve:/m.test(group))
      group += `systemd-resolve:x:${id}:\n`;
    const gid = /^systemd-resolve:[^:]*:(\d+):/m.exec(group)![1];
    if (!/^systemd-resolve:/m.test(passwd))
      passwd += `systemd-resolve:x:${id}:${gid}:systemd Resolver:/run/systemd:/usr/sbin/nologin\n`;
  }
  fs.writeFileSync(path.join(dir, "passwd"), passwd);
  fs.writeFileSync(path.join(dir, "group"), group);
  fs.writeFileSync(
    path.join(dir, "system-bus.conf"),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <!-- The default system bus address, but in the runner's private /run: nm-openvpn's helper
       (which openvpn runs as its up script, with openvpn's environment only) connects there. -->
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
</busconfig>
`,
  );
  fs.writeFileSync(
    path.join(dir, "NetworkManager.conf"),
    `[main]
plugins=keyfile
no-auto-default=*
dns=systemd-resolved
rc-manager=unmanaged
# Never touch the host's name (the runner also gets its own UTS namespace).
hostname-mode=none
auth-polkit=false

[keyfile]
path=/etc/NetworkManager/system-connections
# Links the test configures itself (AWS would give the runner one interface).
unmanaged-devices=${unmanaged.map((d) => `interface-name:${d}`).join(";")}

[logging]
level=INFO
domains=VPN_PLUGIN:DEBUG,VPN:DEBUG,DISPATCH:DEBUG,DNS:DEBUG,DEVICE:DEBUG,POLICY:DEBUG
`,
  );
}

function nmDispatcherBinary(): string {
  for (const p of [
    "/usr/lib/NetworkManager/nm-dispatcher",
    "/usr/libexec/nm-dispatcher",
  ])
    if (fs.existsSync(p)) return p;
  throw new Error("nm-dispatcher not found");
}

/** Start the runner's mount namespace, bus, systemd-resolved, dispatcher and NetworkManager. */
export async function startRunner(
  ns: string,
  dir: string,
  resolved: Resolved,
): Promise<Runner> {
  const holder = startDaemon(
    "runner-ns",
    inNs(ns, [
      "unshare",
      "--mount",
      "--uts",
      "--propagation",
      "private",
      "bash",
      path.join(HERE, "runner-ns.sh"),
      dir,
    ]),
  );
  const env = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    DBUS_SYSTEM_BUS_ADDRESS: "unix:path=/run/dbus/system_bus_socket",
    LANG: "C.UTF-8",
  };
  const run = (argv: readonly string[]) => [
    "nsenter",
    "-t",
    String(holder.pid),
    "-m",
    "-n",
    "--",
    ...argv,
  ];
  await waitFor("the runner's mount namespace", () => {
    if (holder.exited) throw new Error(tail(holder));
    return fs.existsSync(path.join(dir, "ready"));
  });
  const bus = startDaemon(
    "dbus-daemon",
    run([
      "dbus-daemon",
      "--nofork",
      "--nopidfile",
      `--config-file=${path.join(dir, "system-bus.conf")}`,
    ]),
    { env },
  );
  await waitFor("the runner's private system bus", () => {
    if (bus.exited) throw new Error(tail(bus));
    return fs.existsSync(`/proc/${holder.pid}/root/run/dbus/system_bus_socket`);
  });
  const res = startDaemon("systemd-resolved", run([resolved.binary]), {
    env: {
      ...env,
      LD_LIBRARY_PATH: resolved.libDir,
      SYSTEMD_LOG_LEVEL: "debug",
    },
  });
  await waitFor("systemd-resolved on the private bus", () => {
    if (res.exited)
      throw new Error(
        `systemd-resolved ${resolved.version} exited:\n${tail(res)}`,
      );
    const r = sh(
      run([
        "dbus-send",
        "--system",
        "--print-reply=literal",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.NameHasOwner",
        "string:org.freedesktop.resolve1",
      ]),
      { allowFail: true, env },
    );
    return /boolean true/.test(r.stdout);
  });
  startDaemon(
    "nm-dispatcher",
    run([nmDispatcherBinary(), "--persist", "--debug"]),
    { env },
  );
  const startNetworkManager = () =>
    startDaemon(
      "NetworkManager",
      run([
        "NetworkManager",
        "--no-daemon",
        "--debug", // log to stderr (the log file), not to the host's syslog
        `--config=${path.join(dir, "NetworkManager.conf")}`,
        `--config-dir=${path.join(dir, "nm-conf.d")}`,
        `--system-config-dir=${path.join(dir, "nm-conf.d")}`,
      ]),
      { env },
    );
  const runner: Runner = {
    ns,
    dir,
    holder,
    env,
    nm: startNetworkManager(),
    run,
    nmcli: (args, allowFail = false) =>
      sh(run(["nmcli", ...args]), { allowFail }),
    startNetworkManager() {
      runner.nm = startNetworkManager();
      return runner.nm;
    },
  };
  return runner;
}

/** Root, Linux, network namespaces, /dev/net/tun and every program the suites run; they fail (never skip) without. */
export function requireEnvironment(
  suffix: string,
  extra: readonly string[] = [],
): void {
  if (process.platform !== "linux")
    throw new Error("the end-to-end tests need Linux");
  if (process.getuid?.() !== 0)
    throw new Error(
      "the end-to-end tests need root (they create network namespaces and run NetworkManager, OpenVPN, iptables); run them as root, e.g. sudo npm run test:e2e",
    );
  const missing = [
    "ip",
    "nsenter",
    "unshare",
    "iptables",
    "iptables-save",
    "openvpn",
    "NetworkManager",
    "nmcli",
    "dbus-daemon",
    "dbus-send",
    "sysctl",
    "dnsmasq",
    "curl",
    "dpkg-deb",
    "apt-get",
    ...extra,
  ].filter(
    (p) =>
      spawnSync("sh", ["-c", 'command -v "$1"', "sh", p], { encoding: "utf8" })
        .status !== 0,
  );
  if (!fs.existsSync("/usr/lib/NetworkManager/nm-openvpn-service"))
    missing.push("nm-openvpn-service");
  if (missing.length > 0)
    throw new Error(
      `the end-to-end tests need these programs: ${missing.join(", ")} (scripts/test-all.sh installs them)`,
    );
  if (!fs.existsSync("/dev/net/tun"))
    throw new Error("no /dev/net/tun: OpenVPN cannot create its tunnel");
  const probe = `gl-probe-${suffix}`;
  const r = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(
      `cannot create a network namespace (ip netns add): ${r.stderr.trim()}`,
    );
  spawnSync("ip", ["netns", "del", probe]);
}

/** A veth pair: `a` in namespace `nsA`, its peer `b` in `nsB`. */
export function veth(a: string, nsA: string, b: string, nsB: string): void {
  sh([
    "ip",
    "link",
    "add",
    a,
    "netns",
    nsA,
    "type",
    "veth",
    "peer",
    "name",
    b,
    "netns",
    nsB,
  ]);
}

/** dnsmasq as the lab's DHCP or DNS server: in the foreground, logging to its output, as root. */
export const DNSMASQ = [
  "dnsmasq",
  "--conf-file=/dev/null",
  "--keep-in-foreground",
  "--log-facility=-",
  "--user=root",
  "--group=root",
  "--pid-file=",
] as const;

/** What an HTTP GET saw: curl's exit (7: refused or unreachable, 28: timed out) and the body. */
export interface Http {
  ok: boolean;
  status: number | null;
  body: string;
  err: string;
  /** The lab's web server answers `{ server, client }`: the source address it saw. */
  json?: { server: string; client: string };
}

/** An HTTP GET from inside a namespace, through no proxy. */
export function httpGet(ns: string, url: string, timeoutS = 3): Http {
  const r = sh(
    inNs(ns, [
      "curl",
      "-sS",
      "--noproxy",
      "*",
      "--connect-timeout",
      String(timeoutS),
      "--max-time",
      String(timeoutS + 1),
      url,
    ]),
    { allowFail: true, timeoutMs: (timeoutS + 5) * 1000 },
  );
  let json;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* not the lab's web server */
  }
  return {
    ok: r.status === 0,
    status: r.status,
    body: r.stdout,
    err: r.stderr,
    json,
  };
}

/** The A records of `name` by asking `server` from inside a namespace: the addresses, or the error. */
export function resolveA(
  ns: string,
  server: string,
  name: string,
): ReturnType<typeof sh> {
  return sh(
    inNs(ns, [
      process.execPath,
      "-e",
      `const r = new (require("node:dns").promises.Resolver)({ timeout: 3000, tries: 2 });
       r.setServers([process.argv[1]]);
       r.resolve4(process.argv[2]).then((a) => console.log(a.join(" ")), (e) => { console.error(e.code, e.message); process.exit(1); });`,
      server,
      name,
    ]),
    { allowFail: true },
  );
}

/** iptables-save of a namespace, filter and nat tables, without comments and counters. */
export function iptablesSave(ns: string): string {
  const out: string[] = [];
  for (const table of ["filter", "nat"])
    out.push(
      ...sh(inNs(ns, ["iptables-save", "-t", table]))
        .stdout.split("\n")
        .filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => l.replace(/\[\d+:\d+\]/g, "[0:0]")),
    );
  return out.join("\n") + "\n";
}
