import { generatedHeader, MODE_SECRET, type GeneratedFile } from "../file.js";
import { serializeKeyfile, type KeyfileSection } from "./keyfile.js";
import { tunnelDevice, type LabModel, type RunnerModel } from "../model.js";
import { paths } from "./paths.js";

/** NM's D-Bus name of the OpenVPN and libreswan plugins (NetworkManager-openvpn, NetworkManager-libreswan). */
export const OPENVPN_SERVICE = "org.freedesktop.NetworkManager.openvpn";
export const LIBRESWAN_SERVICE = "org.freedesktop.NetworkManager.libreswan";

/**
 * Above the 0 of a distribution's default wired profile and the 120 of the profile cloud-init's
 * NetworkManager renderer writes on cloud images (`cloud-init eth0`), so NM picks the uplink
 * (and with it the tunnel as secondary) when the interface appears, also after a reboot.
 */
export const UPLINK_AUTOCONNECT_PRIORITY = 200;

/**
 * OpenVPN's keep-alive: a ping every 10 s keeps NAT and firewall state on the way open. No
 * receive timeout (ping-exit, ping-restart): a lab server that sends no pings of its own would
 * see an idle tunnel ended; the tunnel keeper's Beaker probe finds a dead tunnel instead.
 */
const OPENVPN_PING = 10;

/** The tunnel keyfile and the uplink keyfile of one runner, both 0600 (keyfiles may hold secrets, and NM refuses group/world-readable ones). */
export function renderKeyfiles(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile[] {
  const root = paths.rootfs(lab, runner);
  const header = [generatedHeader(lab.sourceName, `runner ${runner.name}`)];
  return [
    {
      path: `${root}/${paths.vpnKeyfile(lab)}`,
      mode: MODE_SECRET,
      contents: serializeKeyfile(header, vpnSections(lab, runner)),
    },
    {
      path: `${root}/${paths.uplinkKeyfile(lab)}`,
      mode: MODE_SECRET,
      contents: serializeKeyfile(header, uplinkSections(lab, runner)),
    },
  ];
}

/**
 * The [ipv4] section every tunnel type shares: the lab's routes, never the default route, split
 * DNS. `pushed`: the lab's server can push routes (OpenVPN), which are ignored: a pushed
 * 0.0.0.0/1 or 169.254.169.254 would divert the runner's own traffic. (IPsec's routes are the
 * traffic selectors, which the lab can only narrow from rightsubnet; WireGuard's are ours.)
 */
function ipv4Section(
  lab: LabModel,
  address: string | undefined,
  pushed = false,
): KeyfileSection {
  const nameservers = lab.intranet.nameservers;
  return {
    name: "ipv4",
    entries: [
      ["method", address === undefined ? "auto" : "manual"],
      ["address1", address],
      ...lab.intranet.cidrs.map((cidr, i) => [`route${i + 1}`, cidr] as const),
      ["ignore-auto-routes", pushed || undefined],
      ["never-default", true],
      ["dns", nameservers.length > 0 ? nameservers : undefined],
      // `~domain`: a routing-only domain, so systemd-resolved sends just these names to the lab's servers.
      ["dns-search", lab.intranet.domains.map((d) => `~${d}`)],
      ["ignore-auto-dns", nameservers.length > 0 ? true : undefined],
    ],
  };
}

/** OpenVPN and IPsec run through NM VPN plugins (type=vpn); WireGuard is a device of its own. */
export function isPluginVpn(runner: RunnerModel): boolean {
  return runner.tunnel.type !== "wireguard";
}

export function vpnSections(
  lab: LabModel,
  runner: RunnerModel,
): KeyfileSection[] {
  const t = runner.tunnel;
  const connection = (
    type: string,
    extra: KeyfileSection["entries"] = [],
  ): KeyfileSection => ({
    name: "connection",
    entries: [
      ["id", runner.connections.vpnId],
      ["uuid", runner.connections.vpnUuid],
      ["type", type],
      ...extra,
      // NetworkManager does not autoconnect VPN plugin profiles: the tunnel keeper starts them.
      // A WireGuard profile is a device of its own: NetworkManager connects it, forever.
      ["autoconnect", !isPluginVpn(runner)],
      ["autoconnect-retries", isPluginVpn(runner) ? undefined : 0],
    ],
  });
  const ipv6: KeyfileSection = {
    name: "ipv6",
    entries: [["method", "ignore"]],
  };

  switch (t.type) {
    case "openvpn":
      return [
        connection("vpn"),
        {
          name: "vpn",
          entries: [
            ["service-type", OPENVPN_SERVICE],
            ["connection-type", t.auth === "static-key" ? "static-key" : "tls"],
            ["remote", t.remote],
            ["port", String(t.port)],
            ["proto-tcp", t.protocol === "tcp" ? "yes" : undefined],
            // Named after the lab (a tun device by its prefix): the dispatcher's rules name the
            // same device at every up, whichever other tunnels the host has.
            ["dev", tunnelDevice(lab, "openvpn")],
            ["cipher", t.cipher],
            ["ping", String(OPENVPN_PING)],
            ...(t.auth === "static-key"
              ? ([
                  ["static-key", t.staticKey],
                  ["static-key-direction", String(t.keyDirection)],
                  ["local-ip", t.localIp],
                  ["remote-ip", t.remoteIp],
                ] as const)
              : ([
                  ["ca", t.ca],
                  ["cert", t.cert],
                  // An unencrypted key needs no secret: the plugin asks only for encrypted ones.
                  ["key", t.key],
                  // The peer must hold a server certificate (`--remote-cert-tls server`):
                  // otherwise any certificate of the lab's CA, another runner's client
                  // certificate included, could pose as the VPN server.
                  ["remote-cert-tls", "server"],
                ] as const)),
          ],
        },
        ipv4Section(lab, undefined, true),
        ipv6,
      ];
    case "wireguard":
      return [
        connection("wireguard", [
          ["interface-name", tunnelDevice(lab, "wireguard")],
        ]),
        {
          name: "wireguard",
          entries: [
            // Only the lab's routes: the intranet routes come from [ipv4], not from allowed-ips.
            ["peer-routes", false],
          ],
        },
        {
          name: `wireguard-peer.${t.publicKey}`,
          entries: [
            ["endpoint", `${t.remote}:${t.port}`],
            ["allowed-ips", lab.intranet.cidrs],
            ["persistent-keepalive", t.keepalive > 0 ? t.keepalive : undefined],
          ],
        },
        ipv4Section(lab, t.address),
        { name: "ipv6", entries: [["method", "disabled"]] },
      ];
    case "ipsec":
      return [
        connection("vpn"),
        {
          name: "vpn",
          entries: [
            ["service-type", LIBRESWAN_SERVICE],
            ["ikev2", "insist"],
            ["right", t.remote],
            ["ike", t.ike],
            // The plugin passes this to libreswan's conn as rightsubnet.
            ["rightsubnet", lab.intranet.cidrs.join(",")],
            // The PSK is put into [vpn-secrets] on the runner by the generated loader, from psk_file.
            ["pskinputmodes", "save"],
            ["pskvalue-flags", "0"],
          ],
        },
        ipv4Section(lab, undefined),
        ipv6,
      ];
  }
}

/**
 * The names an EC2 instance's first interface has: eth0 (Xen, or net.ifnames=0 as on RHEL's
 * images), ens5 (Nitro), enX0 (Xen with predictable names). A second interface (eth1, ens6)
 * matches none of them, and a profile is active on one device at a time.
 */
export const UPLINK_INTERFACES = ["eth0", "ens5", "enX0"];

/**
 * The uplink: the runner's own connectivity, which never depends on the lab. It starts no
 * tunnel (a VPN secondary that fails while the uplink activates fails the uplink with it, and
 * after four failures NetworkManager stops trying: measured with NetworkManager 1.42); the
 * tunnel keeper brings the tunnel up. Retried forever: a DHCP hiccup must not leave the runner
 * unreachable.
 */
export function uplinkSections(
  lab: LabModel,
  runner: RunnerModel,
): KeyfileSection[] {
  return [
    {
      name: "connection",
      entries: [
        ["id", runner.connections.uplinkId],
        ["uuid", runner.connections.uplinkUuid],
        ["type", "ethernet"],
        ["interface-name", runner.interface],
        ["autoconnect", true],
        ["autoconnect-priority", UPLINK_AUTOCONNECT_PRIORITY],
        ["autoconnect-retries", 0],
      ],
    },
    ...(runner.interface === undefined
      ? [
          {
            name: "match",
            entries: [["interface-name", UPLINK_INTERFACES]],
          } as const,
        ]
      : []),
    { name: "ethernet", entries: [] },
    { name: "ipv4", entries: [["method", "auto"]] },
    { name: "ipv6", entries: [["method", "auto"]] },
  ];
}
