import * as z from "zod";
import { cidrProblem, dnsNameProblem, ipv4Problem } from "./net.js";

/**
 * The lab file, format version 1 (../shared/lab-format.md), as a zod schema: shapes and single
 * values. Rules that relate fields to each other live in validate/, where they can point at
 * both ends of a conflict. Messages carry `what is wrong` and `how to fix` joined by HINT.
 */
export const HINT = "\u001f";
const err = (message: string, hint: string) => `${message}${HINT}${hint}`;

const pattern = (re: RegExp, what: string, example: string) =>
  z.string().regex(re, {
    error: err(`must be ${what}`, `for example ${JSON.stringify(example)}`),
  });

/** A string that `problem` finds nothing wrong with; its answer says why not. */
const checked = (
  problem: (s: string) => string | undefined,
  what: string,
  example: string,
) =>
  z.string().superRefine((s, ctx) => {
    const why = problem(s);
    if (why !== undefined)
      ctx.addIssue({
        code: "custom",
        message: err(
          `must be ${what} (${why})`,
          `for example ${JSON.stringify(example)}`,
        ),
      });
  });

/** An IPv4 address when it is all digits and dots, a DNS name otherwise. */
export const hostProblem = (s: string): string | undefined =>
  /^[\d.]+$/.test(s) ? ipv4Problem(s) : dnsNameProblem(s);

/** Hosts where the trigger's pod or a runner would reach itself or its cloud's metadata service. */
const LOCAL_HOST =
  /^(?:127|0|169\.254)\.|(?:^|\.)localhost$|^(?:instance-data(?:\.ec2\.internal)?|metadata(?:\.google\.internal)?)$/;

/**
 * Why `text` is no URL of one of `schemes`, or undefined. It must name a host and carry no
 * password, query or fragment; `user` allows a user name (ssh).
 */
export function urlProblem(
  text: string,
  schemes: readonly string[],
  { user = false, path = false } = {},
): string | undefined {
  // RFC 3986's characters that stay inert in a shell command or a config file: no `$ * ; ' ( ) & !`.
  if (!/^[A-Za-z0-9._~+=,:@%/-]+$/.test(text))
    return "it has characters other than letters, digits and . _ ~ + = , : @ % / -";
  if (!URL.canParse(text)) return `it is not of the form ${schemes[0]}://host/`;
  const url = new URL(text);
  const scheme = url.protocol.slice(0, -1);
  if (!schemes.includes(scheme))
    return `scheme ${scheme} is not one of ${schemes.join(", ")}`;
  if (url.password !== "" || (url.username !== "" && !user))
    return "it carries credentials, which never go into a lab file";
  const host = url.hostname;
  if (host === "" || host.startsWith("["))
    return "it needs a host name or IPv4 address";
  const bad = hostProblem(host);
  if (bad) return `host ${host}: ${bad}`;
  if (LOCAL_HOST.test(host))
    return `host ${host} is loopback, link-local or a cloud metadata service`;
  if (url.search !== "" || url.hash !== "") return "it has a query or fragment";
  if (path && url.pathname.replace(/\//g, "") === "")
    return "it names a server but no repository";
  return undefined;
}

const url = (
  schemes: readonly string[],
  what: string,
  example: string,
  opts?: { user?: boolean; path?: boolean },
) => checked((s) => urlProblem(s, schemes, opts), what, example);

/** Dotted-quad IPv4 without leading zeros: the only form every consumer (NM, iptables, AWS) reads alike. */
export const Ipv4 = checked(ipv4Problem, "an IPv4 address", "10.20.0.53");
export const Cidr = checked(cidrProblem, "an IPv4 CIDR", "10.20.0.0/16");
const Host = checked(
  hostProblem,
  "a lowercase host name or an IPv4 address",
  "vpn.foo.example.com",
);
const DomainName = checked(
  dnsNameProblem,
  "a lowercase DNS name",
  "foo.example.com",
);
/** Paths on the runner go into keyfiles and scripts: a plain character set keeps them inert in both. */
const RunnerPath = pattern(
  /^\/(?!.*\/\.\.?(\/|$))[A-Za-z0-9._@+-]+(\/[A-Za-z0-9._@+-]+)*$/,
  "an absolute path on the runner of plain characters",
  "/etc/gen-lab/foo/foo-1.key",
);
/** A whole number from `min` to `max`. */
const Whole = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const range =
    max === Number.MAX_SAFE_INTEGER
      ? `of at least ${min}`
      : `from ${min} to ${max}`;
  const error = err(
    `must be a whole number ${range}`,
    "write the number without quotes",
  );
  return z
    .number({ error })
    .int({ error })
    .min(min, { error })
    .max(max, { error });
};
const Port = Whole(1, 65535);
const nonEmpty = <T extends z.ZodType>(
  item: T,
  what: string,
  example: string,
) =>
  z.array(item).min(1, {
    error: err(`needs at least one ${what}`, `for example [${example}]`),
  });

/**
 * A container image reference as Docker, Podman and Kubernetes parse it (distribution/reference):
 * `[registry[:port]/]path[:tag][@digest]`; anything else fails every pod with InvalidImageName.
 */
const IMAGE_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** A Kubernetes CronJob schedule: five cron fields or a macro; the API server parses the rest. */
const SCHEDULE_RE =
  /^(?:@(?:yearly|annually|monthly|weekly|daily|midnight|hourly)|@every (?=\d)(?:\d+h)?(?:\d+m)?(?:\d+s)?|[0-9A-Za-z*?,/-]+(?:[ \t]+[0-9A-Za-z*?,/-]+){4})$/;

const Ami = pattern(
  /^ami-[0-9a-f]{8,17}$/,
  "an AMI id",
  "ami-0123456789abcdef0",
);
const InstanceType = pattern(
  /^[a-z][a-z0-9-]*\.[a-z0-9]+$/,
  "an EC2 instance type",
  "t3.medium",
);
const Image = pattern(
  IMAGE_RE,
  "a container image reference, [registry[:port]/]path[:tag][@digest]",
  "quay.io/cki/cki-tools:production",
);
/**
 * An SSM parameter name, fully qualified: `/` and path parts of letters, digits and `_.-`, at
 * most 1011 characters; names starting with aws or ssm are AWS's own.
 */
const SsmName = pattern(
  /^(?!\/(?:aws|ssm))(?=.{2,1011}$)(?:\/[A-Za-z0-9_.-]+){1,15}$/i,
  "a fully qualified SSM parameter name (/path/name, not starting with /aws or /ssm)",
  "/arr-cki/prod/foo/foo-1/static_key",
);

const OpenVpnSchema = z.strictObject({
  type: z.literal("openvpn"),
  remote: Host,
  auth: z.enum(["static-key", "tls"], {
    error: err(
      "must be static-key or tls",
      "static-key uses one pre-shared key per runner; tls uses ca, cert and key",
    ),
  }),
  protocol: z
    .enum(["udp", "tcp"], {
      error: err("must be udp or tcp", "leave it out for udp"),
    })
    .default("udp"),
  cipher: pattern(
    /^[A-Za-z0-9][A-Za-z0-9-]{0,39}$/,
    "an OpenVPN cipher name",
    "AES-256-CBC",
  ).optional(),
  ca: RunnerPath.optional(),
});

const WireGuardSchema = z.strictObject({
  type: z.literal("wireguard"),
  remote: Host,
  // 32 bytes in base64: 43 characters, the last one limited, and one `=`.
  public_key: pattern(
    /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/,
    "the lab's WireGuard public key: base64 of 32 bytes",
    "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
  ),
  endpoint_port: Port.default(51820),
  /** Seconds; 0: off. */
  keepalive: Whole(0, 65535).default(25),
});

const IpsecSchema = z.strictObject({
  type: z.literal("ipsec"),
  remote: Host,
  // libreswan's proposal syntax: <encryption>[-<integrity>][-<PRF>][-<DH>], `+` alternatives,
  // `,` proposals. libreswan itself judges the algorithm names.
  ike: pattern(
    /^[A-Za-z0-9_]+(?:[-+;][A-Za-z0-9_]+)*(?:,[A-Za-z0-9_]+(?:[-+;][A-Za-z0-9_]+)*)*$/,
    "an IKE proposal list",
    "aes256-sha256-modp2048",
  ).optional(),
});

export const VpnSchema = z.discriminatedUnion(
  "type",
  [OpenVpnSchema, WireGuardSchema, IpsecSchema],
  {
    error: err(
      "vpn.type must be openvpn, wireguard or ipsec",
      "pick the tunnel type the lab offers",
    ),
  },
);

export const VPN_TYPES = ["openvpn", "wireguard", "ipsec"] as const;

const RunnerSchema = z.strictObject({
  name: pattern(/^[a-z][a-z0-9-]{0,30}$/, "a runner name", "foo-1"),
  zone: z.string({
    error: err("must be a zone name", "use one of the keys of aws.zones"),
  }),
  address: Ipv4,
  /**
   * The runner's primary interface, which the uplink profile binds to. Default: the names an
   * EC2 instance's first interface has (eth0, ens5 on Nitro, enX0 on Xen), never a second one.
   */
  interface: pattern(
    /^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,14}$/,
    "a network interface name (at most 15 characters)",
    "eth0",
  ).optional(),
  vpn: z.strictObject({
    /** Default: 1194 for openvpn, vpn.endpoint_port for wireguard; ipsec uses IKE's own ports. */
    port: Port.optional(),
    static_key: RunnerPath.optional(),
    key_direction: z
      .union([z.literal(0), z.literal(1)], {
        error: err("must be 0 or 1", "the lab side uses the other direction"),
      })
      .optional(),
    local_ip: Ipv4.optional(),
    remote_ip: Ipv4.optional(),
    cert: RunnerPath.optional(),
    key: RunnerPath.optional(),
    private_key_file: RunnerPath.optional(),
    address: Cidr.optional(),
    psk_file: RunnerPath.optional(),
  }),
  /**
   * SSM parameters holding this runner's credential files (base64 of the file), by the field
   * that names the file (`ca` for the lab's CA certificate); fetched at boot. Default
   * `/<prefix>/<environment>/<lab>/<runner>/<field>`.
   */
  ssm_parameters: z
    .partialRecord(
      z.enum(
        ["ca", "static_key", "cert", "key", "private_key_file", "psk_file"],
        {
          error: err(
            "must name a credential field",
            "ca, static_key, cert, key, private_key_file or psk_file",
          ),
        },
      ),
      SsmName,
    )
    .optional(),
});

/** The optional `workers` section: what the runners' workers are and how they scale. */
const WorkersSchema = z.strictObject({
  executor: z
    .enum(["docker-autoscaler", "docker+machine"], {
      error: err(
        "must be docker-autoscaler or docker+machine",
        "leave it out for docker-autoscaler",
      ),
    })
    .default("docker-autoscaler"),
  /** Default: aws.ami. It needs Docker (or a package manager to install it) and EC2 Instance Connect. */
  ami: Ami.optional(),
  instance_type: InstanceType.default("t3.large"),
  max_instances: Whole(1).default(10),
  capacity_per_instance: Whole(1).default(1),
  /** Jobs an instance runs before it is replaced; 0: no limit. */
  max_use_count: Whole(0).default(50),
  idle_count: Whole(0).default(0),
  idle_time: pattern(
    /^(?=\d)(?:\d+h)?(?:\d+m)?(?:\d+s)?$/,
    "a duration in hours, minutes and seconds",
    "20m",
  ).default("20m"),
  ssh_user: pattern(
    /^[a-z_][a-z0-9_-]{0,31}$/,
    "a user name",
    "ec2-user",
  ).default("ec2-user"),
  /** The job image when a job names none. */
  image: Image.default("quay.io/fedora/fedora:latest"),
  root_device_name: pattern(
    /^\/dev\/[a-z0-9]+$/,
    "a device name",
    "/dev/xvda",
  ).default("/dev/xvda"),
  root_volume_size: Whole(8).default(50),
  gitlab_runner_version: pattern(
    /^\d+\.\d+\.\d+$/,
    "a gitlab-runner version",
    "19.3.0",
  ).default("19.3.0"),
});

const EgressSchema = z.strictObject({
  // A slash or only digits and dots: meant as a CIDR; anything else as a host name.
  to: checked(
    (s) => (/^[\d./]+$|\//.test(s) ? cidrProblem(s) : dnsNameProblem(s)),
    "a lowercase host name or an IPv4 CIDR",
    "beaker.foo.example.com",
  ),
  ports: nonEmpty(Port, "port", "443"),
  protocol: z
    .enum(["tcp", "udp"], {
      error: err("must be tcp or udp", "leave it out for tcp"),
    })
    .default("tcp"),
});

// GitLab's path rules: letters, digits, `_`, `-`, `.`; no part starting with `-` or `.`;
// no `.git` or `.atom` at the end. `+`: a project (group/name), `*`: a group.
const PART = String.raw`(?![-.])[A-Za-z0-9_.-]+`;
const gitlabPath = (more: "*" | "+") =>
  new RegExp(String.raw`^(?!.*\.(?:git|atom)$)${PART}(\/${PART})${more}$`);

// git check-ref-format's rules: no leading `-` or `/`, no `..`, `//`, `/.`, `.lock` part or
// trailing `/` or `.`, not HEAD.
export const BRANCH_RE =
  /^(?!HEAD$)(?![-/.])(?!.*(\.\.|\/\/|\/\.|\.lock(?:\/|$)|[/.]$))[A-Za-z0-9._/-]{1,255}$/;
const Branch = pattern(BRANCH_RE, "a git branch name", "main");

const TriggerSchema = z.strictObject({
  name: pattern(/^[a-z0-9][a-z0-9_.-]*$/, "a trigger name", "rhel9"),
  git_url: url(
    ["https", "http", "ssh", "git"],
    "a git repository URL",
    "https://gitlab.com/group/project.git",
    { user: true, path: true },
  ),
  branch: Branch,
  /** cki_pipeline_branch: the pipeline project's branch its pipelines run in; default: the trigger's name. */
  pipeline_branch: Branch.optional(),
  // Each entry becomes a variable of the triggered pipeline: GitLab takes names of letters,
  // digits and `_` only.
  extra: z
    .record(
      pattern(
        /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]{0,254}$/,
        "a pipeline variable name (letters, digits and _, not starting with a digit)",
        "architectures",
      ),
      z
        .string({
          error: err(
            "must be a string",
            'quote the value, e.g. "x86_64 aarch64"',
          ),
        })
        // What a pipeline variable (UTF-8) and PyYAML can carry: no control character but tab
        // and line breaks, no unpaired surrogate.
        .regex(
          /^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uD800-\uDFFF]*$/u,
          {
            error: err(
              "must be text a pipeline variable can hold: it has a control character or an unpaired surrogate",
              "remove the character; tabs and line breaks are fine",
            ),
          },
        ),
    )
    .optional(),
});

const PipelineSchema = z.strictObject({
  project: pattern(
    gitlabPath("+"),
    "a GitLab project path",
    "group/subgroup/project",
  ),
  /** GITLAB_PARENT_PROJECT; default: `project` up to its last `/`. */
  parent_project: pattern(
    gitlabPath("*"),
    "a GitLab group path",
    "group/subgroup",
  ).optional(),
  gitlab_url: url(
    ["https", "http"],
    "the http(s) URL of a GitLab instance",
    "https://gitlab.com",
  ).default("https://gitlab.com"),
  runner_tags: nonEmpty(
    pattern(/^[A-Za-z0-9_.:-]+$/, "a runner tag", "foo"),
    "tag",
    "foo",
  ).optional(),
  schedule: pattern(
    SCHEDULE_RE,
    "a cron schedule: five fields or a macro such as @hourly",
    "0 */4 * * *",
  ),
  image: Image.default("quay.io/cki/cki-tools:production"),
  definition_url: url(
    ["https", "http"],
    "the http(s) URL of the pipeline-definition repository",
    "https://gitlab.com/cki-project/pipeline-definition",
    { path: true },
  ).default("https://gitlab.com/cki-project/pipeline-definition"),
  deployment_environment: z
    .enum(["production", "staging"], {
      error: err("must be production or staging", 'for example "production"'),
    })
    .default("production"),
  /** The Kubernetes Secret with the GitLab token (key `token`); default `<prefix>-<environment>-<lab>-gitlab-token`. */
  token_secret: pattern(
    /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    "a Kubernetes Secret name",
    "arr-cki-prod-foo-gitlab-token",
  ).optional(),
  triggers: nonEmpty(
    TriggerSchema,
    "trigger",
    "{ name: rhel9, git_url: ..., branch: main }",
  ),
});

export const LabSchema = z.strictObject({
  version: z.literal(1, {
    error: err(
      "unsupported lab format version",
      "this gen-lab reads version 1; write `version: 1`",
    ),
  }),
  name: pattern(
    /^[a-z][a-z0-9]{0,15}$/,
    "a lab name: a lowercase letter, then up to 15 lowercase letters or digits",
    "foo",
  ),
  environment: pattern(
    /^[a-z][a-z0-9]{0,9}$/,
    "an environment name",
    "prod",
  ).default("prod"),
  prefix: pattern(/^[a-z][a-z0-9-]{0,19}$/, "a name prefix", "arr-cki").default(
    "arr-cki",
  ),
  intranet: z.strictObject({
    cidrs: nonEmpty(Cidr, "CIDR", "10.20.0.0/16"),
    domains: nonEmpty(DomainName, "domain", "foo.example.com"),
    nameservers: z.array(Ipv4).optional(),
  }),
  beaker: z.strictObject({
    url: url(
      ["https", "http"],
      "an http(s) URL",
      "https://beaker.foo.example.com",
    ),
  }),
  vpn: VpnSchema,
  aws: z.strictObject({
    region: pattern(/^[a-z]{2}(-[a-z]+)+-\d+$/, "an AWS region", "us-east-1"),
    vpc_id: pattern(
      /^vpc-[0-9a-f]{8,17}$/,
      "a VPC id",
      "vpc-0a1b2c3d4e5f60718",
    ),
    vpc_cidr: Cidr,
    ami: Ami,
    instance_type: InstanceType.default("t3.medium"),
    internet_gateway_id: pattern(
      /^igw-[0-9a-f]{8,17}$/,
      "an internet gateway id",
      "igw-0123456789abcdef0",
    ),
    buckets: nonEmpty(
      pattern(
        /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/,
        "a bucket purpose",
        "artifacts",
      ),
      "bucket",
      "artifacts",
    ).default(["artifacts"]),
    zones: z
      .record(
        pattern(
          /^[a-z]{2}(-[a-z]+)+-\d+[a-z]$/,
          "an availability zone name",
          "us-east-1a",
        ),
        z.strictObject({
          runner_subnet: Cidr,
          worker_subnet: Cidr,
          nat_gateway_id: pattern(
            /^nat-[0-9a-f]{8,17}$/,
            "a NAT gateway id",
            "nat-0123456789abcdef0",
          ),
        }),
      )
      .refine((zones) => Object.keys(zones).length > 0, {
        error: err(
          "needs at least one zone",
          "add one entry per availability zone",
        ),
      }),
  }),
  runners: nonEmpty(
    RunnerSchema,
    "runner",
    "{ name: foo-1, zone: us-east-1a, ... }",
  ),
  egress: z.array(EgressSchema).optional(),
  workers: WorkersSchema.prefault({}),
  pipeline: PipelineSchema,
});

/** A lab file as written, with zod's defaults filled in. */
export type LabInput = z.output<typeof LabSchema>;

/** A lab file's first line in labs/: editors then check and complete it (docs/lab-file.md). */
export const LAB_MODELINE =
  "# yaml-language-server: $schema=../schema/lab.schema.json";
