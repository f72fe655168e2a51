import { codePointOrder, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel, ZoneModel } from "../model.js";
import type {
  AwsEip,
  AwsInstance,
  AwsRoute,
  AwsRouteTable,
  AwsRouteTableAssociation,
  AwsS3Bucket,
  AwsS3BucketPublicAccessBlock,
  AwsS3BucketServerSideEncryptionConfiguration,
  AwsSecurityGroup,
  AwsSubnet,
  AwsVpcSecurityGroupRule,
  Ref,
  TerraformJson,
} from "./aws-types.js";
import { paths } from "./paths.js";

/**
 * Every attribute emitted exists in provider 5.x and 6.x (aws_eip `domain` since 5, the
 * aws_vpc_security_group_*_rule resources since 4.56), so both majors are allowed; the upper
 * bound keeps a future major with renamed attributes from being picked up unreviewed.
 */
export const AWS_PROVIDER_VERSION = ">= 5.0, < 7.0";

/**
 * A Terraform resource name from parts: Terraform names match ^[a-zA-Z_][a-zA-Z0-9_-]*$. Dashes
 * and dots become underscores so names read the same whatever part they came from; lab names
 * start with a letter, so the result always does. Names carry the lab so the files of several
 * labs can share one root module without clashing.
 */
export function tfName(...parts: readonly string[]): string {
  // Joined with `+`, not Array.prototype.join: a part that was already used as a property key
  // (every resource name is) is a ThinString in V8, and join then builds a two-byte string.
  // One such key made the whole JSON file two bytes per character: twice the memory, and a
  // slower hash and write.
  let name = parts[0] ?? "";
  for (let i = 1; i < parts.length; i++) name += `_${parts[i]}`;
  return name.replace(/[^a-zA-Z0-9_]/g, "_");
}

const ref = (type: string, name: string, attribute: string): Ref =>
  `\${${type}.${name}.${attribute}}`;

/** Resource names of one lab, so the renderer and its tests derive them the same way. */
export const tfNames = {
  subnet: (lab: LabModel, role: "runner" | "worker", zone: ZoneModel) =>
    tfName(lab.name, role, zone.name),
  intranetRoute: (lab: LabModel, zone: ZoneModel, cidr: string) =>
    tfName(lab.name, "worker", zone.name, "to", cidr),
  defaultRoute: (lab: LabModel, role: "runner" | "worker", zone: ZoneModel) =>
    tfName(lab.name, role, zone.name, "default"),
  securityGroup: (lab: LabModel) => tfName(lab.name, "runners"),
  ingressRule: (lab: LabModel, zone: ZoneModel) =>
    tfName(lab.name, "runners", "from", "worker", zone.name),
  egressRule: (lab: LabModel) => tfName(lab.name, "runners", "egress", "all"),
  runner: (lab: LabModel, runner: RunnerModel) =>
    tfName(lab.name, "runner", runner.name),
  bucket: (lab: LabModel, purpose: string) =>
    tfName(lab.name, "bucket", purpose),
} as const;

/** `<prefix>.<environment>.<kind>.<lab>-<role>-<zone>`, the Name tag scheme of the VPC's subnets. */
function zoneTag(
  lab: LabModel,
  kind: "subnet" | "rtb",
  role: "runner" | "worker",
  zone: ZoneModel,
): string {
  return `${lab.prefix}.${lab.environment}.${kind}.${lab.name}-${role}-${zone.name}`;
}

/**
 * Resources are collected in Maps and become objects only at the end, with `record`. In V8 a
 * string used as a property key turns into a ThinString when an equal key exists already (as
 * on every run after the first over the same labs), and a string concatenated from a
 * ThinString is two-byte: the references built from a resource name after it was a key made
 * the whole JSON file two bytes per character (twice the memory, and a slower hash and write).
 */
function record<T>(entries: ReadonlyMap<string, T>): Record<string, T> {
  // Without a prototype the object is a hash table from the start: names carry the lab, and
  // in a plain object every lab's names would build their own chain of V8 hidden classes. No
  // name can collide with an inherited property either.
  const result = Object.create(null) as Record<string, T>;
  for (const [name, value] of entries) result[name] = value;
  return result;
}

/**
 * The lab's AWS resources as Terraform JSON data: subnets and routing per zone, the runners'
 * security group, the runners with their Elastic IPs, the buckets, and outputs. Pure.
 */
export function terraformConfig(lab: LabModel): TerraformJson {
  const subnets = new Map<string, AwsSubnet>();
  const routeTables = new Map<string, AwsRouteTable>();
  const associations = new Map<string, AwsRouteTableAssociation>();
  const routes = new Map<string, AwsRoute>();
  const ingress = new Map<string, AwsVpcSecurityGroupRule>();
  const instances = new Map<string, AwsInstance>();
  const eips = new Map<string, AwsEip>();
  const buckets = new Map<string, AwsS3Bucket>();
  const publicAccessBlocks = new Map<string, AwsS3BucketPublicAccessBlock>();
  const encryption = new Map<
    string,
    AwsS3BucketServerSideEncryptionConfiguration
  >();
  const output = new Map<string, TerraformJson["output"][string]>();

  const sg = tfNames.securityGroup(lab);
  const sgId = ref("aws_security_group", sg, "id");
  const runnerByName = new Map(lab.runners.map((r) => [r.name, r]));

  for (const zone of lab.aws.zones) {
    const runner = runnerByName.get(zone.runner)!;
    for (const role of ["runner", "worker"] as const) {
      const name = tfNames.subnet(lab, role, zone);
      subnets.set(name, {
        vpc_id: lab.aws.vpcId,
        cidr_block: role === "runner" ? zone.runnerSubnet : zone.workerSubnet,
        availability_zone: zone.name,
        tags: { Name: zoneTag(lab, "subnet", role, zone) },
      });
      routeTables.set(name, {
        vpc_id: lab.aws.vpcId,
        tags: { Name: zoneTag(lab, "rtb", role, zone) },
      });
      associations.set(name, {
        subnet_id: ref("aws_subnet", name, "id"),
        route_table_id: ref("aws_route_table", name, "id"),
      });
    }

    const worker = tfNames.subnet(lab, "worker", zone);
    // Registering a zone's runner needs its workers' subnet id (amazonec2-subnet-id).
    output.set(tfName(worker, "subnet_id"), {
      description: `Subnet of the workers in ${zone.name}, spawned by runner ${runner.name}`,
      value: ref("aws_subnet", worker, "id"),
    });
    // The intranet goes to this zone's runner (its ENI, so the route follows the instance and
    // not an address), which forwards it into the tunnel; everything else leaves via the NAT.
    for (const cidr of lab.intranet.cidrs) {
      routes.set(tfNames.intranetRoute(lab, zone, cidr), {
        route_table_id: ref("aws_route_table", worker, "id"),
        destination_cidr_block: cidr,
        network_interface_id: ref(
          "aws_instance",
          tfNames.runner(lab, runner),
          "primary_network_interface_id",
        ),
      });
    }
    routes.set(tfNames.defaultRoute(lab, "worker", zone), {
      route_table_id: ref("aws_route_table", worker, "id"),
      destination_cidr_block: "0.0.0.0/0",
      nat_gateway_id: zone.natGatewayId,
    });
    // Runners need a public address (their Elastic IP) to reach the lab's VPN endpoint.
    routes.set(tfNames.defaultRoute(lab, "runner", zone), {
      route_table_id: ref(
        "aws_route_table",
        tfNames.subnet(lab, "runner", zone),
        "id",
      ),
      destination_cidr_block: "0.0.0.0/0",
      gateway_id: lab.aws.internetGatewayId,
    });

    ingress.set(tfNames.ingressRule(lab, zone), {
      security_group_id: sgId,
      cidr_ipv4: zone.workerSubnet,
      ip_protocol: "-1",
      description: `Everything from the worker subnet of ${zone.name}`,
      tags: { Name: `${lab.name}-runners-from-worker-${zone.name}` },
    });
  }

  for (const runner of [...lab.runners].sort((a, b) =>
    codePointOrder(a.name, b.name),
  )) {
    const name = tfNames.runner(lab, runner);
    const zone = lab.aws.zones.find((z) => z.name === runner.zone)!;
    instances.set(name, {
      ami: lab.aws.ami,
      instance_type: lab.aws.instanceType,
      subnet_id: ref("aws_subnet", tfNames.subnet(lab, "runner", zone), "id"),
      private_ip: runner.address,
      // The runner forwards its workers' packets into the tunnel: neither source nor destination is its own.
      source_dest_check: false,
      vpc_security_group_ids: [sgId],
      // IMDSv2 only: a token-less request (SSRF from a job) gets nothing.
      metadata_options: { http_endpoint: "enabled", http_tokens: "required" },
      tags: { Name: `${lab.name}-${runner.name}` },
    });
    eips.set(name, {
      domain: "vpc",
      instance: ref("aws_instance", name, "id"),
      tags: { Name: `${lab.name}-${runner.name}` },
    });
    output.set(tfName(name, "public_ip"), {
      description: `Public address of runner ${runner.name}: allow-list it at the lab's VPN endpoint`,
      value: ref("aws_eip", name, "public_ip"),
    });
  }

  for (const { purpose, name: bucket } of lab.aws.buckets) {
    const name = tfNames.bucket(lab, purpose);
    buckets.set(name, { bucket, tags: { Name: bucket } });
    publicAccessBlocks.set(name, {
      bucket: ref("aws_s3_bucket", name, "id"),
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    // SSE-S3 (AES256): encrypted at rest with no KMS key to own, no per-request KMS cost or
    // throttling for high-volume CI artifacts, and no kms:Decrypt grant for every reader. The
    // aws/s3 managed KMS key would add nothing: its key policy cannot be restricted anyway.
    encryption.set(name, {
      bucket: ref("aws_s3_bucket", name, "id"),
      rule: [
        {
          apply_server_side_encryption_by_default: { sse_algorithm: "AES256" },
        },
      ],
    });
    output.set(tfName(name, "name"), {
      description: `Name of the ${purpose} bucket`,
      value: ref("aws_s3_bucket", name, "bucket"),
    });
  }

  // Built like the others, as Maps: the group's name is in every reference to it above.
  const securityGroups = new Map<string, AwsSecurityGroup>([
    [
      sg,
      {
        name: `${lab.prefix}.${lab.environment}.sg.${lab.name}-runners`,
        description: `gen-lab runners of lab ${lab.name}: ingress from its worker subnets only`,
        vpc_id: lab.aws.vpcId,
        tags: {
          Name: `${lab.prefix}.${lab.environment}.sg.${lab.name}-runners`,
        },
      },
    ],
  ]);
  // A security group created by Terraform has no egress at all (the provider removes AWS's
  // default allow-all rule), and the runners must reach the VPN endpoint, DNS and the
  // package mirrors: allow everything out, as AWS would by default.
  const egress = new Map<string, AwsVpcSecurityGroupRule>([
    [
      tfNames.egressRule(lab),
      {
        security_group_id: sgId,
        cidr_ipv4: "0.0.0.0/0",
        ip_protocol: "-1",
        description: "Everything out: VPN endpoint, DNS, package mirrors",
        tags: { Name: `${lab.name}-runners-egress-all` },
      },
    ],
  ]);

  return {
    terraform: {
      required_providers: {
        aws: { source: "hashicorp/aws", version: AWS_PROVIDER_VERSION },
      },
    },
    provider: { aws: { region: lab.aws.region } },
    resource: {
      aws_subnet: record(subnets),
      aws_route_table: record(routeTables),
      aws_route_table_association: record(associations),
      aws_route: record(routes),
      aws_security_group: record(securityGroups),
      aws_vpc_security_group_ingress_rule: record(ingress),
      aws_vpc_security_group_egress_rule: record(egress),
      aws_instance: record(instances),
      aws_eip: record(eips),
      aws_s3_bucket: record(buckets),
      aws_s3_bucket_public_access_block: record(publicAccessBlocks),
      aws_s3_bucket_server_side_encryption_configuration: record(encryption),
    },
    output: record(output),
  };
}

/** `<lab>/terraform/<lab>.tf.json`: Terraform JSON syntax (JSON has no comments, so no header). */
export function renderTerraform(lab: LabModel): GeneratedFile[] {
  return [
    {
      path: paths.terraform(lab),
      mode: MODE_PUBLIC,
      contents: `${JSON.stringify(terraformConfig(lab), null, 2)}\n`,
    },
  ];
}
