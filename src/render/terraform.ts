import { MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel, ZoneModel } from "../model.js";
import { paths } from "./paths.js";

/**
 * Provider versions. Every AWS attribute emitted exists in 5.x and 6.x (aws_eip `domain` since
 * 5, the aws_vpc_security_group_*_rule resources since 4.56); the upper bound keeps a future
 * major with renamed attributes from being picked up unreviewed. gitlab_user_runner came in
 * the GitLab provider 16.3.
 */
export const AWS_PROVIDER_VERSION = ">= 5.0, < 7.0";
export const GITLAB_PROVIDER_VERSION = ">= 16.3, < 19.0";

/** The ports the runners reach their workers on: SSH; docker+machine also Docker's TLS port. */
export const WORKER_PORTS = {
  "docker-autoscaler": [22],
  "docker+machine": [22, 2376],
} as const;

/** A Terraform expression in a JSON string, `${aws_instance.foo_runner_foo_1.id}`. */
type Ref = `\${${string}}`;
const ref = (type: string, name: string, attribute: string): Ref =>
  `\${${type}.${name}.${attribute}}`;

/**
 * A Terraform resource name from parts: names match ^[a-zA-Z_][a-zA-Z0-9_-]*$; dashes and dots
 * become underscores. Names carry the lab, so several labs' files can share one root module.
 */
export function tfName(...parts: readonly string[]): string {
  return parts.join("_").replace(/[^a-zA-Z0-9_]/g, "_");
}

/** Resource names of one lab, so the renderer, the README and the tests derive them alike. */
export const tfNames = {
  subnet: (lab: LabModel, role: "runner" | "worker", zone: ZoneModel) =>
    tfName(lab.name, role, zone.name),
  intranetRoute: (lab: LabModel, zone: ZoneModel, cidr: string) =>
    tfName(lab.name, "worker", zone.name, "to", cidr),
  defaultRoute: (lab: LabModel, role: "runner" | "worker", zone: ZoneModel) =>
    tfName(lab.name, role, zone.name, "default"),
  securityGroup: (lab: LabModel) => tfName(lab.name, "runners"),
  workersSecurityGroup: (lab: LabModel) => tfName(lab.name, "workers"),
  runner: (lab: LabModel, runner: RunnerModel) =>
    tfName(lab.name, "runner", runner.name),
  workers: (lab: LabModel, runner: RunnerModel) =>
    tfName(lab.name, "workers", runner.name),
  bucket: (lab: LabModel, purpose: string) =>
    tfName(lab.name, "bucket", purpose),
  project: (lab: LabModel) => tfName(lab.name, "pipelines"),
  key: (lab: LabModel) => tfName(lab.name, "runners"),
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

/** AWS's partition of a region: ARNs differ in China and GovCloud. */
function partition(region: string): string {
  return region.startsWith("cn-")
    ? "aws-cn"
    : region.startsWith("us-gov-")
      ? "aws-us-gov"
      : "aws";
}

/** The trust policy of a role that EC2 instances take. */
const ASSUME_ROLE_EC2 = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: { Service: "ec2.amazonaws.com" },
      Action: "sts:AssumeRole",
    },
  ],
});

type Resources = Record<string, Record<string, object>>;

/** Adds `body` as resource `type.name`; types are written in the order they are first added. */
function adder(resources: Resources) {
  return (type: string, name: string, body: object): void => {
    (resources[type] ??= {})[name] = body;
  };
}

/**
 * The lab's AWS and GitLab resources as Terraform JSON data: per zone the subnets and routing,
 * the runner and its workers; the security groups, the KMS key of the lab's SSM parameters, the
 * buckets, and outputs. Pure.
 */
export function terraformConfig(lab: LabModel): object {
  const resources: Resources = {};
  const add = adder(resources);
  const output: Record<string, { description: string; value: Ref }> = {};
  const region = lab.aws.region;
  const arn = `arn:${partition(region)}`;
  const runnersSg = ref("aws_security_group", tfNames.securityGroup(lab), "id");
  const workersSg = ref(
    "aws_security_group",
    tfNames.workersSecurityGroup(lab),
    "id",
  );
  const key = tfNames.key(lab);
  const machine = lab.workers.executor === "docker+machine";

  for (const zone of lab.aws.zones) {
    const runner = lab.runners.find((r) => r.name === zone.runner)!;
    for (const role of ["runner", "worker"] as const) {
      const name = tfNames.subnet(lab, role, zone);
      add("aws_subnet", name, {
        vpc_id: lab.aws.vpcId,
        cidr_block: role === "runner" ? zone.runnerSubnet : zone.workerSubnet,
        availability_zone: zone.name,
        tags: { Name: zoneTag(lab, "subnet", role, zone) },
      });
      add("aws_route_table", name, {
        vpc_id: lab.aws.vpcId,
        tags: { Name: zoneTag(lab, "rtb", role, zone) },
      });
      add("aws_route_table_association", name, {
        subnet_id: ref("aws_subnet", name, "id"),
        route_table_id: ref("aws_route_table", name, "id"),
      });
    }
    const worker = tfNames.subnet(lab, "worker", zone);
    output[tfName(worker, "subnet_id")] = {
      description: `Subnet of the workers in ${zone.name}, spawned by runner ${runner.name}`,
      value: ref("aws_subnet", worker, "id"),
    };
    // The intranet goes to this zone's runner (its ENI, so the route follows the instance and
    // not an address), which forwards it into the tunnel; everything else leaves via the NAT.
    for (const cidr of lab.intranet.cidrs)
      add("aws_route", tfNames.intranetRoute(lab, zone, cidr), {
        route_table_id: ref("aws_route_table", worker, "id"),
        destination_cidr_block: cidr,
        network_interface_id: ref(
          "aws_instance",
          tfNames.runner(lab, runner),
          "primary_network_interface_id",
        ),
      });
    add("aws_route", tfNames.defaultRoute(lab, "worker", zone), {
      route_table_id: ref("aws_route_table", worker, "id"),
      destination_cidr_block: "0.0.0.0/0",
      nat_gateway_id: zone.natGatewayId,
    });
    // Runners need a public address (their Elastic IP) to reach the lab's VPN endpoint.
    add("aws_route", tfNames.defaultRoute(lab, "runner", zone), {
      route_table_id: ref(
        "aws_route_table",
        tfNames.subnet(lab, "runner", zone),
        "id",
      ),
      destination_cidr_block: "0.0.0.0/0",
      gateway_id: lab.aws.internetGatewayId,
    });
    add(
      "aws_vpc_security_group_ingress_rule",
      tfName(lab.name, "runners", "from", "worker", zone.name),
      {
        security_group_id: runnersSg,
        cidr_ipv4: zone.workerSubnet,
        ip_protocol: "-1",
        description: `Everything from the worker subnet of ${zone.name}`,
        tags: { Name: `${lab.name}-runners-from-worker-${zone.name}` },
      },
    );
  }

  for (const [role, sgName, description] of [
    [
      "runners",
      lab.names.runnersSecurityGroup,
      `gen-lab runners of lab ${lab.name}: ingress from its worker subnets only`,
    ],
    [
      "workers",
      lab.names.workersSecurityGroup,
      `gen-lab workers of lab ${lab.name}: ingress from its runners only, on the ports the ${lab.workers.executor} executor uses`,
    ],
  ] as const) {
    add("aws_security_group", tfName(lab.name, role), {
      name: sgName,
      description,
      vpc_id: lab.aws.vpcId,
      tags: { Name: sgName },
    });
    // A security group Terraform creates has no egress at all: the runners reach the VPN
    // endpoint, GitLab and package mirrors, the workers their registries, through the NAT.
    add(
      "aws_vpc_security_group_egress_rule",
      tfName(lab.name, role, "egress", "all"),
      {
        security_group_id: ref(
          "aws_security_group",
          tfName(lab.name, role),
          "id",
        ),
        cidr_ipv4: "0.0.0.0/0",
        ip_protocol: "-1",
        description: "Everything out",
        tags: { Name: `${lab.name}-${role}-egress-all` },
      },
    );
  }
  for (const port of WORKER_PORTS[lab.workers.executor])
    add(
      "aws_vpc_security_group_ingress_rule",
      tfName(lab.name, "workers", "from", "runners", String(port)),
      {
        security_group_id: workersSg,
        referenced_security_group_id: runnersSg,
        ip_protocol: "tcp",
        from_port: port,
        to_port: port,
        description: `TCP ${port} from the lab's runners (${port === 22 ? "SSH" : "Docker TLS"})`,
        tags: { Name: `${lab.name}-workers-from-runners-${port}` },
      },
    );

  // The lab's SSM parameters are encrypted with a key of its own: a runner's role may decrypt
  // with it, and no other principal that can read SSM parameters can.
  add("aws_kms_key", key, {
    description: `gen-lab lab ${lab.name}: the runners' tokens and tunnel credentials in SSM`,
    enable_key_rotation: true,
    deletion_window_in_days: 30,
    tags: { Name: lab.names.kmsAlias.slice("alias/".length) },
  });
  add("aws_kms_alias", key, {
    name: lab.names.kmsAlias,
    target_key_id: ref("aws_kms_key", key, "key_id"),
  });

  if (machine) {
    // docker-machine starts its workers with this profile; it grants nothing.
    const workersRole = tfName(lab.name, "workers");
    add("aws_iam_role", workersRole, {
      name: lab.names.workersRole,
      description: `gen-lab workers of lab ${lab.name} (docker-machine)`,
      assume_role_policy: ASSUME_ROLE_EC2,
      tags: { Name: lab.names.workersRole },
    });
    add("aws_iam_instance_profile", workersRole, {
      name: lab.names.workersRole,
      role: ref("aws_iam_role", workersRole, "name"),
      tags: { Name: lab.names.workersRole },
    });
  }

  for (const runner of [...lab.runners].sort((a, b) =>
    a.name < b.name ? -1 : 1,
  ))
    addRunner(lab, runner, add, output, { arn, key, workersSg, machine });

  for (const { purpose, name: bucket } of lab.aws.buckets) {
    const name = tfNames.bucket(lab, purpose);
    add("aws_s3_bucket", name, { bucket, tags: { Name: bucket } });
    add("aws_s3_bucket_public_access_block", name, {
      bucket: ref("aws_s3_bucket", name, "id"),
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    // SSE-S3 (AES256): encrypted at rest with no key to own, no per-request KMS cost or
    // throttling for high-volume CI artifacts, and no kms:Decrypt grant for every reader.
    add("aws_s3_bucket_server_side_encryption_configuration", name, {
      bucket: ref("aws_s3_bucket", name, "id"),
      rule: [
        {
          apply_server_side_encryption_by_default: { sse_algorithm: "AES256" },
        },
      ],
    });
    output[tfName(name, "name")] = {
      description: `Name of the ${purpose} bucket`,
      value: ref("aws_s3_bucket", name, "bucket"),
    };
  }

  return {
    terraform: {
      required_providers: {
        aws: { source: "hashicorp/aws", version: AWS_PROVIDER_VERSION },
        gitlab: { source: "gitlabhq/gitlab", version: GITLAB_PROVIDER_VERSION },
      },
    },
    // The GitLab provider's token comes from GITLAB_TOKEN (a token with the create_runner
    // scope on the project): never from a file.
    provider: {
      aws: { region },
      gitlab: {
        base_url: `${lab.pipeline.gitlabUrl.replace(/\/+$/, "")}/api/v4/`,
      },
    },
    data: {
      gitlab_project: {
        [tfNames.project(lab)]: { path_with_namespace: lab.pipeline.project },
      },
    },
    resource: resources,
    output,
  };
}

/** One runner: its GitLab runner and token, IAM role, instance, Elastic IP and workers. */
function addRunner(
  lab: LabModel,
  runner: RunnerModel,
  add: ReturnType<typeof adder>,
  output: Record<string, { description: string; value: Ref }>,
  ctx: { arn: string; key: string; workersSg: Ref; machine: boolean },
): void {
  const name = tfNames.runner(lab, runner);
  const workers = tfNames.workers(lab, runner);
  const region = lab.aws.region;
  const zone = lab.aws.zones.find((z) => z.name === runner.zone)!;
  const workerSubnet = ref(
    "aws_subnet",
    tfNames.subnet(lab, "worker", zone),
    "id",
  );
  const parameterArn = (p: string) =>
    `${ctx.arn}:ssm:${region}:*:parameter${p}`;
  const token = tfName(name, "token");
  const subnetParameter = tfName(name, "worker_subnet");
  // The files Terraform reads, relative to this file's directory (terraform/).
  const fromRunner = (file: string) =>
    `\${path.module}/${file.replace(`${lab.name}/`, "../")}`;

  add("gitlab_user_runner", name, {
    runner_type: "project_type",
    project_id: ref("data.gitlab_project", tfNames.project(lab), "id"),
    description: runner.names.description,
    tag_list: [...lab.pipeline.runnerTags],
    // Only jobs that ask for the lab's tags: an untagged job has no business in the lab.
    untagged: false,
    locked: true,
  });
  add("aws_ssm_parameter", token, {
    name: runner.names.tokenParameter,
    description: `GitLab runner authentication token of ${runner.names.description}`,
    type: "SecureString",
    key_id: ref("aws_kms_key", ctx.key, "arn"),
    value: ref("gitlab_user_runner", name, "token"),
    tags: { Name: runner.names.tokenParameter },
  });
  const parameters = [
    runner.names.tokenParameter,
    ...runner.credentials.map((c) => c.parameter),
  ];
  if (ctx.machine) {
    add("aws_ssm_parameter", subnetParameter, {
      name: runner.names.subnetParameter,
      description: `Worker subnet of ${runner.names.description}, for docker-machine`,
      type: "String",
      value: workerSubnet,
      tags: { Name: runner.names.subnetParameter },
    });
    parameters.push(runner.names.subnetParameter);
  }

  const statements: object[] = [
    {
      Sid: "ReadOwnParameters",
      Effect: "Allow",
      Action: ["ssm:GetParameter"],
      Resource: parameters.map(parameterArn),
    },
    {
      Sid: "DecryptOwnParameters",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [ref("aws_kms_key", ctx.key, "arn")],
    },
    ...(ctx.machine
      ? dockerMachineStatements(lab, runner, ctx.arn)
      : autoscalerStatements(workers, runner, ctx.arn, region)),
  ];
  add("aws_iam_role", name, {
    name: runner.names.role,
    description: `gen-lab ${runner.names.description}`,
    assume_role_policy: ASSUME_ROLE_EC2,
    tags: { Name: runner.names.role },
  });
  add("aws_iam_role_policy", name, {
    name: "gen-lab-runner",
    role: ref("aws_iam_role", name, "id"),
    policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }),
  });
  add("aws_iam_instance_profile", name, {
    name: runner.names.role,
    role: ref("aws_iam_role", name, "name"),
    tags: { Name: runner.names.role },
  });

  add("aws_instance", name, {
    ami: lab.aws.ami,
    instance_type: lab.aws.instanceType,
    subnet_id: ref("aws_subnet", tfNames.subnet(lab, "runner", zone), "id"),
    private_ip: runner.address,
    // The runner forwards its workers' packets into the tunnel: neither end is its own.
    source_dest_check: false,
    vpc_security_group_ids: [
      ref("aws_security_group", tfNames.securityGroup(lab), "id"),
    ],
    iam_instance_profile: ref("aws_iam_instance_profile", name, "name"),
    // IMDSv2 only: a token-less request (SSRF from a job) gets nothing.
    metadata_options: { http_endpoint: "enabled", http_tokens: "required" },
    root_block_device: { encrypted: true, volume_type: "gp3" },
    // Gzipped: EC2 takes 16 KiB of user data. A changed lab makes a new runner.
    user_data_base64: `\${base64gzip(file("${fromRunner(paths.runnerUserData(lab, runner))}"))}`,
    user_data_replace_on_change: true,
    // The runner reads its token and permissions at its first boot.
    depends_on: [
      `aws_ssm_parameter.${token}`,
      `aws_iam_role_policy.${name}`,
      ...(ctx.machine ? [`aws_ssm_parameter.${subnetParameter}`] : []),
    ],
    tags: { Name: `${lab.name}-${runner.name}` },
  });
  add("aws_eip", name, {
    domain: "vpc",
    instance: ref("aws_instance", name, "id"),
    tags: { Name: `${lab.name}-${runner.name}` },
  });
  output[tfName(name, "public_ip")] = {
    description: `Public address of runner ${runner.name}: allow-list it at the lab's VPN endpoint`,
    value: ref("aws_eip", name, "public_ip"),
  };
  if (ctx.machine) return;

  add("aws_launch_template", workers, {
    name: runner.names.workers,
    description: `Workers of ${runner.names.description}`,
    image_id: lab.workers.ami,
    instance_type: lab.workers.instanceType,
    user_data: `\${base64encode(file("${fromRunner(paths.workerUserData(lab, runner))}"))}`,
    // Hop limit 1: a job's container gets no instance metadata.
    metadata_options: {
      http_endpoint: "enabled",
      http_tokens: "required",
      http_put_response_hop_limit: 1,
    },
    network_interfaces: [
      {
        associate_public_ip_address: false,
        delete_on_termination: true,
        security_groups: [ctx.workersSg],
      },
    ],
    block_device_mappings: [
      {
        device_name: lab.workers.rootDeviceName,
        ebs: {
          encrypted: true,
          volume_size: lab.workers.rootVolumeSize,
          volume_type: "gp3",
          delete_on_termination: true,
        },
      },
    ],
    tag_specifications: ["instance", "volume"].map((resource_type) => ({
      resource_type,
      tags: { Name: runner.names.workers },
    })),
    tags: { Name: runner.names.workers },
  });
  // The runner alone scales its group: no scaling policies, instances protected from scale-in,
  // no rebalancing across zones, and the desired capacity it sets left alone by Terraform.
  add("aws_autoscaling_group", workers, {
    name: runner.names.workers,
    min_size: 0,
    max_size: lab.workers.maxInstances,
    desired_capacity: 0,
    vpc_zone_identifier: [workerSubnet],
    protect_from_scale_in: true,
    suspended_processes: ["AZRebalance"],
    launch_template: {
      id: ref("aws_launch_template", workers, "id"),
      version: ref("aws_launch_template", workers, "latest_version"),
    },
    tag: [
      { key: "Name", value: runner.names.workers, propagate_at_launch: true },
    ],
    lifecycle: { ignore_changes: ["desired_capacity"] },
  });
  output[tfName(workers, "group")] = {
    description: `Auto Scaling group of the workers of runner ${runner.name}`,
    value: ref("aws_autoscaling_group", workers, "name"),
  };
}

/**
 * What the docker-autoscaler's AWS plugin needs (fleeting-plugin-aws's recommended policy),
 * scoped to this runner's own group: scale and terminate it, and reach its instances over
 * SSH with EC2 Instance Connect.
 */
function autoscalerStatements(
  workers: string,
  runner: RunnerModel,
  arn: string,
  region: string,
): object[] {
  return [
    {
      Sid: "ScaleOwnGroup",
      Effect: "Allow",
      Action: [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
      ],
      Resource: [ref("aws_autoscaling_group", workers, "arn")],
    },
    {
      Sid: "DescribeGroupsAndInstances",
      Effect: "Allow",
      Action: [
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeInstances",
        "ec2:DescribeSpotInstanceRequests",
      ],
      Resource: ["*"],
    },
    {
      Sid: "ConnectToOwnWorkers",
      Effect: "Allow",
      Action: ["ec2-instance-connect:SendSSHPublicKey"],
      Resource: [`${arn}:ec2:${region}:*:instance/*`],
      Condition: {
        StringEquals: {
          "ec2:ResourceTag/aws:autoscaling:groupName": runner.names.workers,
        },
      },
    },
  ];
}

/**
 * What docker-machine's amazonec2 driver needs: run instances in the worker subnet, and stop,
 * start, reboot and terminate only the machines named after this runner; its own key pairs.
 */
function dockerMachineStatements(
  lab: LabModel,
  runner: RunnerModel,
  arn: string,
): object[] {
  const region = lab.aws.region;
  const prefix = runner.names.machine.replace("%s", "");
  return [
    {
      Sid: "Describe",
      Effect: "Allow",
      Action: [
        "ec2:DescribeInstances",
        "ec2:DescribeKeyPairs",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeImages",
      ],
      Resource: ["*"],
    },
    {
      Sid: "RunMachines",
      Effect: "Allow",
      Action: ["ec2:RunInstances", "ec2:CreateTags"],
      Resource: ["*"],
    },
    {
      Sid: "ManageOwnMachines",
      Effect: "Allow",
      Action: [
        "ec2:StartInstances",
        "ec2:StopInstances",
        "ec2:RebootInstances",
        "ec2:TerminateInstances",
      ],
      Resource: [`${arn}:ec2:${region}:*:instance/*`],
      Condition: { StringLike: { "ec2:ResourceTag/Name": `${prefix}*` } },
    },
    {
      Sid: "PassWorkersRole",
      Effect: "Allow",
      Action: ["iam:PassRole"],
      Resource: [ref("aws_iam_role", tfName(lab.name, "workers"), "arn")],
    },
    {
      Sid: "OwnKeyPairs",
      Effect: "Allow",
      Action: ["ec2:CreateKeyPair", "ec2:ImportKeyPair", "ec2:DeleteKeyPair"],
      Resource: [`${arn}:ec2:${region}:*:key-pair/${prefix}*`],
    },
  ];
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
