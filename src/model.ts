import { v5 as uuidv5 } from "uuid";
import type { LabInput } from "./schema.js";

/**
 * The resolved lab: every default applied once, every derived name computed once, readonly.
 * Renderers read only this; they never look at the lab file's raw shape.
 */
export interface LabModel {
  /** The lab file as given on the command line, for messages. */
  readonly file: string;
  /** The lab file's base name, shown in generated files: output must not depend on the working directory. */
  readonly sourceName: string;
  readonly name: string;
  readonly environment: string;
  readonly prefix: string;
  readonly intranet: {
    readonly cidrs: readonly string[];
    readonly domains: readonly string[];
    /** Empty when the tunnel pushes its own nameservers. */
    readonly nameservers: readonly string[];
  };
  readonly beakerUrl: string;
  readonly aws: AwsModel;
  readonly runners: readonly RunnerModel[];
  /** Absent: workers may reach the whole intranet. Present: only these destinations. */
  readonly egress: readonly EgressModel[] | undefined;
  /** Worker subnets of every zone, in zone order: the sources the runners forward and masquerade. */
  readonly workerSubnets: readonly string[];
  readonly pipeline: PipelineModel;
  /** Names of this lab's iptables chains (at most 28 characters, iptables' limit). */
  readonly chains: { readonly forward: string; readonly nat: string };
}

export interface AwsModel {
  readonly region: string;
  readonly vpcId: string;
  readonly vpcCidr: string;
  readonly ami: string;
  readonly instanceType: string;
  readonly internetGatewayId: string;
  readonly buckets: readonly {
    readonly purpose: string;
    readonly name: string;
  }[];
  /** Sorted by zone name. */
  readonly zones: readonly ZoneModel[];
}

export interface ZoneModel {
  readonly name: string;
  readonly runnerSubnet: string;
  readonly workerSubnet: string;
  readonly natGatewayId: string;
  /** The runner that is this zone's route target. */
  readonly runner: string;
}

/** Everything one runner's tunnel needs, lab-wide and per-runner settings merged. */
export type TunnelModel =
  | {
      readonly type: "openvpn";
      readonly auth: "static-key";
      readonly remote: string;
      readonly port: number;
      readonly protocol: "udp" | "tcp";
      readonly cipher: string | undefined;
      readonly staticKey: string;
      readonly keyDirection: 0 | 1;
      readonly localIp: string;
      readonly remoteIp: string;
    }
  | {
      readonly type: "openvpn";
      readonly auth: "tls";
      readonly remote: string;
      readonly port: number;
      readonly protocol: "udp" | "tcp";
      readonly cipher: string | undefined;
      readonly ca: string;
      readonly cert: string;
      readonly key: string;
    }
  | {
      readonly type: "wireguard";
      readonly remote: string;
      readonly port: number;
      readonly publicKey: string;
      /** Seconds; 0 disables keepalives. */
      readonly keepalive: number;
      readonly privateKeyFile: string;
      /** The runner's tunnel address with its prefix, e.g. `10.255.0.2/32`. */
      readonly address: string;
    }
  | {
      readonly type: "ipsec";
      readonly remote: string;
      readonly ike: string | undefined;
      readonly pskFile: string;
    };

export interface RunnerModel {
  readonly name: string;
  readonly zone: string;
  readonly address: string;
  readonly interface: string;
  readonly runnerSubnet: string;
  readonly workerSubnet: string;
  readonly tunnel: TunnelModel;
  /** NetworkManager connection ids and uuids, stable for a given prefix, environment, lab and runner. */
  readonly connections: {
    readonly vpnId: string;
    readonly vpnUuid: string;
    readonly uplinkId: string;
    readonly uplinkUuid: string;
  };
}

export interface EgressModel {
  /** A host name under the intranet domains, resolved on the runner when the tunnel comes up; or a CIDR. */
  readonly to: string;
  readonly kind: "host" | "cidr";
  readonly ports: readonly number[];
  readonly protocol: "tcp" | "udp";
}

export interface PipelineModel {
  readonly project: string;
  readonly gitlabUrl: string;
  readonly runnerTags: readonly string[];
  readonly schedule: string;
  readonly image: string;
  readonly triggers: readonly {
    readonly name: string;
    readonly gitUrl: string;
    readonly branch: string;
    readonly extra: Readonly<Record<string, string>>;
  }[];
}

/** Fixed namespace of gen-lab's UUIDv5 ids; changing it would change every generated uuid. */
export const UUID_NAMESPACE = "6d1f3b52-53c6-4a5e-9a43-6b0c1f0e2a77";

/** A uuid that depends only on what identifies the connection, so regenerating never changes it. */
export function connectionUuid(
  lab: { prefix: string; environment: string; name: string },
  runner: string,
  role: string,
): string {
  return uuidv5(
    `gen-lab/${lab.prefix}/${lab.environment}/${lab.name}/${runner}/${role}`,
    UUID_NAMESPACE,
  );
}

export const DEFAULT_OPENVPN_PORT = 1194;
const IPV4_CIDR = /^\d+\.\d+\.\d+\.\d+\/\d+$/;

/** The lab's WireGuard interface: the kernel takes names of at most 15 characters. */
export function wireguardInterface(lab: Pick<LabModel, "name">): string {
  return `wg-${lab.name}`.slice(0, 15);
}

/** The S3 bucket name of a purpose: `<prefix>-<environment>-<lab>-<purpose>`. */
export function bucketName(
  lab: { prefix: string; environment: string; name: string },
  purpose: string,
): string {
  return `${lab.prefix}-${lab.environment}-${lab.name}-${purpose}`;
}

/**
 * Resolve a lab that passed validation into the model. It assumes validity (validate/ ran):
 * a missing per-type field here is a programming error, not a user error.
 */
export function resolveLab(input: LabInput, file: string): LabModel {
  const runnerOfZone = new Map(input.runners.map((r) => [r.zone, r.name]));
  // Entries, not a lookup by name: only the record's own keys are zones.
  const zones: ZoneModel[] = Object.entries(input.aws.zones)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, z]) => ({
      name,
      runnerSubnet: z.runner_subnet,
      workerSubnet: z.worker_subnet,
      natGatewayId: z.nat_gateway_id,
      runner: runnerOfZone.get(name) ?? "",
    }));
  const zoneByName = new Map(zones.map((z) => [z.name, z]));

  const runners: RunnerModel[] = input.runners.map((r) => {
    const zone = zoneByName.get(r.zone)!;
    return {
      name: r.name,
      zone: r.zone,
      address: r.address,
      interface: r.interface,
      runnerSubnet: zone.runnerSubnet,
      workerSubnet: zone.workerSubnet,
      tunnel: resolveTunnel(input, r),
      connections: {
        vpnId: `${input.name}-vpn`,
        vpnUuid: connectionUuid(input, r.name, "vpn"),
        uplinkId: `${input.name}-uplink`,
        uplinkUuid: connectionUuid(input, r.name, "uplink"),
      },
    };
  });

  return {
    file,
    sourceName: file.split(/[\\/]/).pop() ?? file,
    name: input.name,
    environment: input.environment,
    prefix: input.prefix,
    intranet: {
      cidrs: [...input.intranet.cidrs],
      domains: [...input.intranet.domains],
      nameservers: [...(input.intranet.nameservers ?? [])],
    },
    beakerUrl: input.beaker.url,
    aws: {
      region: input.aws.region,
      vpcId: input.aws.vpc_id,
      vpcCidr: input.aws.vpc_cidr,
      ami: input.aws.ami,
      instanceType: input.aws.instance_type,
      internetGatewayId: input.aws.internet_gateway_id,
      buckets: input.aws.buckets.map((purpose) => ({
        purpose,
        name: bucketName(input, purpose),
      })),
      zones,
    },
    runners,
    egress: input.egress?.map((e) => ({
      to: e.to,
      kind: IPV4_CIDR.test(e.to) ? "cidr" : "host",
      ports: [...new Set(e.ports)].sort((a, b) => a - b),
      protocol: e.protocol,
    })),
    workerSubnets: zones.map((z) => z.workerSubnet),
    pipeline: {
      project: input.pipeline.project,
      gitlabUrl: input.pipeline.gitlab_url,
      runnerTags: [...(input.pipeline.runner_tags ?? [input.name])],
      schedule: input.pipeline.schedule,
      image: input.pipeline.image,
      triggers: input.pipeline.triggers.map((t) => ({
        name: t.name,
        gitUrl: t.git_url,
        branch: t.branch,
        extra: { ...(t.extra ?? {}) },
      })),
    },
    chains: {
      forward: `GENLAB-FWD-${input.name}`,
      nat: `GENLAB-NAT-${input.name}`,
    },
  };
}

function resolveTunnel(
  input: LabInput,
  r: LabInput["runners"][number],
): TunnelModel {
  const vpn = input.vpn;
  const v = r.vpn;
  switch (vpn.type) {
    case "openvpn":
      if (vpn.auth === "static-key") {
        return {
          type: "openvpn",
          auth: "static-key",
          remote: vpn.remote,
          port: v.port ?? DEFAULT_OPENVPN_PORT,
          protocol: vpn.protocol,
          cipher: vpn.cipher,
          staticKey: v.static_key!,
          keyDirection: v.key_direction ?? 1,
          localIp: v.local_ip!,
          remoteIp: v.remote_ip!,
        };
      }
      return {
        type: "openvpn",
        auth: "tls",
        remote: vpn.remote,
        port: v.port ?? DEFAULT_OPENVPN_PORT,
        protocol: vpn.protocol,
        cipher: vpn.cipher,
        ca: vpn.ca!,
        cert: v.cert!,
        key: v.key!,
      };
    case "wireguard":
      return {
        type: "wireguard",
        remote: vpn.remote,
        port: v.port ?? vpn.endpoint_port,
        publicKey: vpn.public_key,
        keepalive: vpn.keepalive,
        privateKeyFile: v.private_key_file!,
        address: v.address!,
      };
    case "ipsec":
      return {
        type: "ipsec",
        remote: vpn.remote,
        ike: vpn.ike,
        pskFile: v.psk_file!,
      };
  }
}
