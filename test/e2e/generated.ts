/**
 * Reading the files gen-lab generated for the data-plane test: the test takes every value it
 * acts on (tunnel endpoints, ports, cipher, key direction, uuids, DNS) from them, never from a
 * hand-written copy.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export type Keyfile = Record<string, Record<string, string>>;

/** A NetworkManager keyfile (GLib key file syntax) as section -> key -> value. */
export function readKeyfile(file: string): Keyfile {
  const out: Keyfile = {};
  let section: Record<string, string> | undefined;
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = out[header[1]!] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0 || !section)
      throw new Error(`${file}: cannot parse line: ${raw}`);
    section[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** A required value of a keyfile, with the file named when it is missing. */
export function need(
  kf: Keyfile,
  file: string,
  section: string,
  key: string,
): string {
  const v = kf[section]?.[key];
  if (v === undefined || v === "")
    throw new Error(`${path.basename(file)}: [${section}] ${key} is missing`);
  return v;
}

/** The settings of one lab's OpenVPN static-key tunnel, from its generated keyfiles. */
export interface Tunnel {
  lab: string;
  vpnFile: string;
  uplinkFile: string;
  dispatcher: string;
  vpnId: string;
  uuid: string;
  uplinkId: string;
  uplinkInterface: string;
  device: string;
  secondaries: string[];
  remote: string;
  port: number;
  tcp: boolean;
  cipher: string | undefined;
  staticKey: string;
  keyDirection: number;
  localIp: string;
  remoteIp: string;
  routes: string[];
  dns: string[];
  dnsSearch: string[];
}

export function readTunnel(rootfs: string, lab: string): Tunnel {
  const nm = path.join(rootfs, "etc/NetworkManager");
  const vpnFile = path.join(
    nm,
    "system-connections",
    `${lab}-vpn.nmconnection`,
  );
  const uplinkFile = path.join(
    nm,
    "system-connections",
    `${lab}-uplink.nmconnection`,
  );
  const vpn = readKeyfile(vpnFile);
  const uplink = readKeyfile(uplinkFile);
  const v = (key: string) => need(vpn, vpnFile, "vpn", key);
  if (v("service-type") !== "org.freedesktop.NetworkManager.openvpn")
    throw new Error(`${vpnFile}: not an OpenVPN profile`);
  if (v("connection-type") !== "static-key")
    throw new Error(
      `${vpnFile}: the data-plane test needs a static-key tunnel`,
    );
  const list = (s: string | undefined) =>
    (s ?? "")
      .split(";")
      .map((x) => x.trim())
      .filter((x) => x !== "");
  const routes = Object.entries(vpn["ipv4"] ?? {})
    .filter(([k]) => /^route\d+$/.test(k))
    .map(([, value]) => value.split(",")[0]!);
  return {
    lab,
    vpnFile,
    uplinkFile,
    dispatcher: path.join(nm, "dispatcher.d", `90-gen-lab-${lab}`),
    vpnId: need(vpn, vpnFile, "connection", "id"),
    uuid: need(vpn, vpnFile, "connection", "uuid"),
    uplinkId: need(uplink, uplinkFile, "connection", "id"),
    uplinkInterface: uplink["connection"]?.["interface-name"] ?? "eth0",
    device: v("dev"),
    secondaries: list(uplink["connection"]?.["secondaries"]),
    remote: v("remote"),
    port: Number(vpn["vpn"]?.["port"] ?? "1194"),
    tcp: vpn["vpn"]?.["proto-tcp"] === "yes",
    cipher: vpn["vpn"]?.["cipher"],
    staticKey: v("static-key"),
    keyDirection: Number(vpn["vpn"]?.["static-key-direction"] ?? "-1"),
    localIp: v("local-ip"),
    remoteIp: v("remote-ip"),
    routes,
    dns: list(vpn["ipv4"]?.["dns"]),
    dnsSearch: list(vpn["ipv4"]?.["dns-search"]),
  };
}

/** `[Resolve] DNSStubListenerExtra=` of the runner's generated resolved drop-in. */
export function stubListenerExtra(rootfs: string, lab: string): string[] {
  const file = path.join(
    rootfs,
    `etc/systemd/resolved.conf.d/90-gen-lab-${lab}.conf`,
  );
  return [
    ...fs.readFileSync(file, "utf8").matchAll(/^DNSStubListenerExtra=(.+)$/gm),
  ].map((m) => m[1]!.trim());
}

/** `DNS=` and `Domains=` the generated worker cloud-config gives the workers. */
export function workerResolved(userData: string): {
  dns: string[];
  domains: string[];
} {
  const text = fs.readFileSync(userData, "utf8");
  const words = (re: RegExp) =>
    [...text.matchAll(re)].flatMap((m) => m[1]!.trim().split(/\s+/));
  return {
    dns: words(/^\s*DNS=(.+)$/gm),
    domains: words(/^\s*Domains=(.+)$/gm),
  };
}
