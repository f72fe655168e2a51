import { generatedHeader, MODE_EXEC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { paths } from "./paths.js";
import { renderTemplate } from "./templates.js";

/** iptables' multiport match takes at most 15 ports. */
const MULTIPORT_MAX = 15;

/** The flat view the dispatcher template prints. */
export interface DispatcherView {
  readonly header: string;
  readonly lab: string;
  readonly uuid: string;
  readonly uplinkUuid: string;
  readonly rejectChain: string;
  readonly upEvents: string;
  readonly downEvents: string;
  /**
   * IPsec: libreswan makes no tunnel device, so NAT goes to the tunnel's address (SNAT;
   * MASQUERADE would take the uplink's own) and what the lab sends enters on the uplink.
   */
  readonly noTunnelDevice: boolean;
  readonly forwardChain: string;
  readonly natChain: string;
  readonly workerSubnets: readonly string[];
  readonly intranetCidrs: readonly string[];
  /** False when the lab has no allow-list: workers may reach the whole intranet. */
  readonly egress:
    | false
    | readonly {
        kind: "host" | "cidr";
        to: string;
        protocol: string;
        portLists: string[];
      }[];
}

export function dispatcherView(
  lab: LabModel,
  runner: RunnerModel,
): DispatcherView {
  // NM reports a plugin VPN with vpn-up/vpn-down and a WireGuard device connection with up/down.
  const device = runner.tunnel.type === "wireguard";
  return {
    header: generatedHeader(lab.sourceName, `runner ${runner.name}`),
    lab: lab.name,
    uuid: runner.connections.vpnUuid,
    uplinkUuid: runner.connections.uplinkUuid,
    rejectChain: lab.chains.reject,
    upEvents: device ? "up|vpn-up" : "vpn-up|up",
    downEvents: device ? "down|vpn-down" : "vpn-down|down",
    noTunnelDevice: runner.tunnel.type === "ipsec",
    forwardChain: lab.chains.forward,
    natChain: lab.chains.nat,
    workerSubnets: lab.workerSubnets,
    intranetCidrs: lab.intranet.cidrs,
    egress:
      lab.egress === undefined
        ? false
        : lab.egress.map((e) => ({
            kind: e.kind,
            to: e.to,
            protocol: e.protocol,
            portLists: chunk(e.ports, MULTIPORT_MAX).map((p) => p.join(",")),
          })),
  };
}

export function renderDispatcher(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile {
  return {
    path: `${paths.rootfs(lab, runner)}/${paths.dispatcher(lab)}`,
    mode: MODE_EXEC,
    contents: renderTemplate("dispatcher.sh.njk", dispatcherView(lab, runner)),
  };
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(items.slice(i, i + size));
  return out;
}
