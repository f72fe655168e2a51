import { createHash } from "node:crypto";
import { v5 as uuidv5 } from "uuid";
import type { LabInput } from "./schema.js";

/** `T` with every property, array and nested object readonly. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * The resolved lab: every default applied once, every derived name computed once, readonly.
 * Renderers read only this; they never look at the lab file's raw shape. Its type is what
 * {@link resolveLab} builds: one source of truth, each field documented where it is made.
 */
export type LabModel = DeepReadonly<ReturnType<typeof resolve>>;
export type AwsModel = LabModel["aws"];
export type ZoneModel = AwsModel["zones"][number];
export type RunnerModel = LabModel["runners"][number];
/** Everything one runner's tunnel needs, lab-wide and per-runner settings merged. */
export type TunnelModel = RunnerModel["tunnel"];
export type EgressModel = NonNullable<LabModel["egress"]>[number];
export type PipelineModel = LabModel["pipeline"];

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

/**
 * The lab's tunnel device (IPsec has none): named after the lab, so the dispatcher's rules name
 * the same device at every up, whatever else runs on the host. At most 15 characters (the kernel's limit).
 */
export function tunnelDevice(
  lab: { name: string },
  type: "openvpn" | "wireguard",
): string {
  return `${type === "wireguard" ? "wg" : "tun"}-${lab.name}`.slice(0, 15);
}

/**
 * `name` if it has at most `max` characters; otherwise cut, with 8 hex digits of its sha256
 * appended, so it stays unique and stable (IAM names: 64, Kubernetes names: 52).
 */
export function shortName(name: string, max: number): string {
  if (name.length <= max) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, max - 9).replace(/-+$/, "")}-${hash}`;
}

/**
 * The SSM parameter of a runner's credential field by default:
 * `/<prefix>/<environment>/<lab>/<runner>/<field>`, and `/<prefix>/<environment>/<lab>/ca` for
 * the lab's CA certificate, which its runners share.
 */
export function defaultParameter(
  lab: { prefix: string; environment: string; name: string },
  runner: string,
  field: string,
): string {
  const base = `/${lab.prefix}/${lab.environment}/${lab.name}`;
  return field === "ca" ? `${base}/ca` : `${base}/${runner}/${field}`;
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
export const resolveLab = (input: LabInput, file: string): LabModel =>
  resolve(input, file);

function resolve(input: LabInput, file: string) {
  const runnerOfZone = new Map(input.runners.map((r) => [r.zone, r.name]));
  // Entries, not a lookup by name: only the record's own keys are zones.
  // Sorted by zone name: the order of subnets, routes and README rows alike.
  const zones = Object.entries(input.aws.zones)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, z]) => ({
      name,
      runnerSubnet: z.runner_subnet,
      workerSubnet: z.worker_subnet,
      natGatewayId: z.nat_gateway_id,
      /** The runner that is this zone's route target. */
      runner: runnerOfZone.get(name) ?? "",
    }));
  const zoneByName = new Map(zones.map((z) => [z.name, z]));

  const base = `${input.prefix}-${input.environment}-${input.name}`;
  const runners = input.runners.map((r) => {
    const zone = zoneByName.get(r.zone)!;
    return {
      name: r.name,
      zone: r.zone,
      address: r.address,
      interface: r.interface,
      runnerSubnet: zone.runnerSubnet,
      workerSubnet: zone.workerSubnet,
      tunnel: resolveTunnel(input, r),
      /** NetworkManager connection ids and uuids, stable for a given prefix, environment, lab and runner. */
      connections: {
        vpnId: `${input.name}-vpn`,
        vpnUuid: connectionUuid(input, r.name, "vpn"),
        uplinkId: `${input.name}-uplink`,
        uplinkUuid: connectionUuid(input, r.name, "uplink"),
      },
      /** Files the tunnel reads, each fetched at boot from its SSM parameter (base64 of the file). */
      credentials: credentialFiles(input, r).map(([field, path]) => ({
        field,
        path,
        parameter:
          r.ssm_parameters?.[field] ?? defaultParameter(input, r.name, field),
      })),
      /** Names of this runner's own AWS and GitLab objects. */
      names: {
        /** Its IAM role and instance profile (IAM takes at most 64 characters). */
        role: shortName(`${base}-${r.name}`, 64),
        /** Its workers' Auto Scaling group and launch template (docker-autoscaler). */
        workers: `${base}-${r.name}-workers`,
        /** docker-machine's name of a worker: `%s` is its unique part. */
        machine: `${input.name}-${r.name}-%s`,
        /** The SSM parameters of its GitLab runner token, and of its worker subnet's id (docker+machine). */
        tokenParameter: defaultParameter(input, r.name, "runner-token"),
        subnetParameter: defaultParameter(input, r.name, "worker-subnet-id"),
        description: `${input.name} ${r.name} (${r.zone})`,
      },
    };
  });

  const w = input.workers;
  const p = input.pipeline;
  const parent = p.parent_project ?? p.project.replace(/\/[^/]*$/, "");
  return {
    /** The lab file as given on the command line, for messages. */
    file,
    /** The lab file's base name, shown in generated files: output must not depend on the working directory. */
    sourceName: file.split(/[\\/]/).pop() ?? file,
    name: input.name,
    environment: input.environment,
    prefix: input.prefix,
    intranet: {
      cidrs: [...input.intranet.cidrs],
      domains: [...input.intranet.domains],
      /** Empty when the tunnel pushes its own nameservers. */
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
    /** Absent: workers may reach the whole intranet. Present: only these destinations. */
    egress: input.egress?.map((e) => ({
      /** A host name under the intranet domains, resolved on the runner when the tunnel comes up; or a CIDR. */
      to: e.to,
      kind: (IPV4_CIDR.test(e.to) ? "cidr" : "host") as "cidr" | "host",
      ports: [...new Set(e.ports)].sort((a, b) => a - b),
      protocol: e.protocol,
    })),
    /** Worker subnets of every zone, in zone order: the sources the runners forward and masquerade. */
    workerSubnets: zones.map((z) => z.workerSubnet),
    pipeline: {
      /** The pipeline project's full path: its runners are registered there, its pipelines run there. */
      project: p.project,
      /** GITLAB_PARENT_PROJECT, and the rest of `project` below it (cki_pipeline_project). */
      parentProject: parent,
      projectName: p.project.slice(parent.length + 1),
      gitlabUrl: p.gitlab_url,
      runnerTags: [...(p.runner_tags ?? [input.name])],
      schedule: p.schedule,
      image: p.image,
      /** PIPELINE_DEFINITION_URL and CKI_DEPLOYMENT_ENVIRONMENT of the trigger. */
      definitionUrl: p.definition_url,
      deploymentEnvironment: p.deployment_environment,
      /** The Kubernetes Secret holding the GitLab token under key `token`. */
      tokenSecret: p.token_secret ?? `${base}-gitlab-token`,
      triggers: p.triggers.map((t) => ({
        name: t.name,
        gitUrl: t.git_url,
        branch: t.branch,
        /** cki_pipeline_branch: the pipeline project's branch this trigger's pipelines run in. */
        pipelineBranch: t.pipeline_branch ?? t.name,
        extra: { ...(t.extra ?? {}) },
      })),
    },
    /** The runners' workers and the gitlab-runner that drives them. */
    workers: {
      executor: w.executor,
      ami: w.ami ?? input.aws.ami,
      instanceType: w.instance_type,
      maxInstances: w.max_instances,
      capacityPerInstance: w.capacity_per_instance,
      maxUseCount: w.max_use_count,
      idleCount: w.idle_count,
      idleTime: w.idle_time,
      sshUser: w.ssh_user,
      image: w.image,
      rootDeviceName: w.root_device_name,
      rootVolumeSize: w.root_volume_size,
      gitlabRunnerVersion: w.gitlab_runner_version,
    },
    /** Names of AWS objects of the lab as a whole. */
    names: {
      /** `<prefix>-<environment>-<lab>`: the start of every per-runner AWS name. */
      base,
      runnersSecurityGroup: `${input.prefix}.${input.environment}.sg.${input.name}-runners`,
      workersSecurityGroup: `${input.prefix}.${input.environment}.sg.${input.name}-workers`,
      /** The KMS key alias that encrypts the lab's SSM parameters. */
      kmsAlias: `alias/${base}-runners`,
      /** The IAM role and instance profile of docker-machine's workers (no permissions). */
      workersRole: shortName(`${base}-workers`, 64),
    },
    /** Names of this lab's iptables chains (at most 28 characters, iptables' limit). */
    chains: {
      forward: `GENLAB-FWD-${input.name}`,
      nat: `GENLAB-NAT-${input.name}`,
      /** Refuses the workers' traffic into the intranet while the tunnel is down. */
      reject: `GENLAB-REJ-${input.name}`,
    },
  };
}

/** The credential files a runner's tunnel reads, with the field that names each. */
export function credentialFiles(lab: LabInput, r: LabInput["runners"][number]) {
  const files = [
    ["ca", lab.vpn.type === "openvpn" ? lab.vpn.ca : undefined],
    ["static_key", r.vpn.static_key],
    ["cert", r.vpn.cert],
    ["key", r.vpn.key],
    ["private_key_file", r.vpn.private_key_file],
    ["psk_file", r.vpn.psk_file],
  ] as const;
  type Field = (typeof files)[number][0];
  return files.filter((f): f is [Field, string] => f[1] !== undefined);
}

/** Everything one runner's tunnel needs, lab-wide and per-runner settings merged. */
function resolveTunnel(input: LabInput, r: LabInput["runners"][number]) {
  const vpn = input.vpn;
  const v = r.vpn;
  switch (vpn.type) {
    case "openvpn": {
      const common = {
        type: "openvpn" as const,
        remote: vpn.remote,
        port: v.port ?? DEFAULT_OPENVPN_PORT,
        protocol: vpn.protocol,
        cipher: vpn.cipher,
      };
      return vpn.auth === "static-key"
        ? {
            ...common,
            auth: "static-key" as const,
            staticKey: v.static_key!,
            keyDirection: v.key_direction ?? 1,
            localIp: v.local_ip!,
            remoteIp: v.remote_ip!,
          }
        : {
            ...common,
            auth: "tls" as const,
            ca: vpn.ca!,
            cert: v.cert!,
            key: v.key!,
          };
    }
    case "wireguard":
      return {
        type: "wireguard" as const,
        remote: vpn.remote,
        port: v.port ?? vpn.endpoint_port,
        publicKey: vpn.public_key,
        /** Seconds; 0 disables keepalives. */
        keepalive: vpn.keepalive,
        privateKeyFile: v.private_key_file!,
        /** The runner's tunnel address with its prefix, e.g. `10.255.0.2/32`. */
        address: v.address!,
      };
    case "ipsec":
      return {
        type: "ipsec" as const,
        remote: vpn.remote,
        ike: vpn.ike,
        pskFile: v.psk_file!,
      };
  }
}
