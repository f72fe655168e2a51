import { z } from "zod";
import { cidrProblem, dnsNameProblem, ipv4Problem } from "./net.js";

/**
 * The lab file, format version 1 (../shared/lab-format.md), as a zod schema.
 *
 * This layer checks shapes and single values only; rules that relate fields to each other
 * (subnets inside the VPC, one runner per zone, ...) live in validate.ts, where they can
 * point at both ends of a conflict.
 *
 * Custom messages carry `what is wrong` and `how to fix` separated by HINT_SEPARATOR.
 */
export const HINT_SEPARATOR = "\u001f";
const err = (message: string, hint: string): string =>
  `${message}${HINT_SEPARATOR}${hint}`;

export const SUPPORTED_VERSIONS = [1] as const;

const pattern = (re: RegExp, what: string, example: string) =>
  z.string().regex(re, {
    error: err(
      `must be ${what} (${re.source})`,
      `for example ${JSON.stringify(example)}`,
    ),
  });

/**
 * A container image reference as the distribution/reference grammar (what Docker, Podman,
 * containerd and Kubernetes parse) defines it: `[registry[:port]/]path[:tag][@digest]`, each
 * path component lowercase letters and digits joined by `.`, `_`, `__` or dashes, a tag of at
 * most 128 word characters, dots and dashes after a word character, a sha256, sha384 or sha512
 * digest of the exact length. A reference outside it makes every pod of the CronJob fail with
 * InvalidImageName.
 */
const IMAGE_RE = (() => {
  const domainComponent = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
  const domain = `${domainComponent}(?:\\.${domainComponent})*(?::(?<port>[0-9]+))?`;
  const pathComponent = "[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*";
  const name = `(?<name>(?:${domain}/)?${pathComponent}(?:/${pathComponent})*)`;
  const tag = "\\w[\\w.-]{0,127}";
  // The digests runtimes verify (go-digest's registered algorithms), in lowercase hex.
  const digest =
    "(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})";
  return new RegExp(`^${name}(?::${tag})?(?:@${digest})?$`);
})();

/** distribution/reference's limit on the name (registry and path), and one on the whole text. */
const IMAGE_NAME_MAX = 255;
const IMAGE_MAX = 1024;

function isImageReference(text: string): boolean {
  // The length first: the pattern is only fast on texts of a sane size.
  if (text.length > IMAGE_MAX) return false;
  // 64 hex digits alone read as an image id, never a name: Docker refuses them as one.
  if (/^[a-f0-9]{64}$/.test(text)) return false;
  const m = IMAGE_RE.exec(text);
  if (!m) return false;
  const { name, port } = m.groups!;
  return (
    name!.length <= IMAGE_NAME_MAX &&
    (port === undefined || Number(port) <= 65535)
  );
}

const IMAGE_ERROR = err(
  "must be a container image reference, [registry[:port]/]path[:tag][@digest], as Docker and Kubernetes read it",
  'path components of lowercase letters and digits, joined by ".", "_", "__" or "-"; for example "quay.io/cki/cki-tools:production"',
);

/** Dotted-quad IPv4 without leading zeros: the only form every consumer (NM, iptables, AWS) reads alike. */
const IPV4_RE =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const CIDR_RE =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/;
/** Paths on the runner end up in keyfiles and shell scripts: a conservative character set keeps them safe in both. */
const RUNNER_PATH_RE =
  /^\/(?!.*\/\.\.?(\/|$))[A-Za-z0-9._@+-]+(\/[A-Za-z0-9._@+-]+)*$/;

export const Ipv4 = pattern(
  IPV4_RE,
  "an IPv4 address in dotted-quad form",
  "10.20.0.53",
);
export const Cidr = pattern(
  CIDR_RE,
  "an IPv4 CIDR such as 10.20.0.0/16",
  "10.20.0.0/16",
);
/** A string that `problem` finds nothing wrong with; its answer says why not. */
const checked = (
  problem: (s: string) => string | undefined,
  what: string,
  hint: string,
) =>
  z.string().superRefine((s, ctx) => {
    const why = problem(s);
    if (why !== undefined)
      ctx.addIssue({
        code: "custom",
        message: err(`must be ${what} (${why})`, hint),
      });
  });

/** An IPv4 address when it is all digits and dots, a DNS name otherwise. */
export const hostProblem = (s: string): string | undefined =>
  /^[\d.]+$/.test(s) ? ipv4Problem(s) : dnsNameProblem(s);

export const DomainName = checked(
  dnsNameProblem,
  "a lowercase DNS name",
  'for example "foo.example.com"',
);
export const RunnerPath = pattern(
  RUNNER_PATH_RE,
  "an absolute path on the runner of plain characters",
  "/etc/gen-lab/foo/foo-1.key",
);
const Host = checked(
  hostProblem,
  "a lowercase host name or an IPv4 address",
  'for example "vpn.foo.example.com" or "203.0.113.7"',
);

/** What a URL of a field may be: its schemes, and which of them may carry a user name. */
interface UrlRules {
  readonly schemes: readonly string[];
  /** Schemes whose URL may name a user (never a password), as in ssh://git@gitlab.com/x.git. */
  readonly userSchemes?: readonly string[];
  /** The URL must name a path beyond `/` (a repository, not a server). */
  readonly pathRequired?: boolean;
}

/**
 * RFC 3986 path characters that stay inert in a shell command: no `$ & ' ( ) * ; !`, and never
 * whitespace, quotes, backticks, backslashes, `| < >` or control characters. The generated
 * README prints URLs into commands, and a WHATWG parser would let all of those through.
 */
const URL_PATH_RE = /^(\/([A-Za-z0-9._~+=,:@-]|%[0-9A-Fa-f]{2})*)*$/;

/**
 * Why `text` is not a URL as the field's rules allow, or undefined: `scheme://[user@]host[:port][/path]`
 * with a DNS name (any case) or IPv4 address as host, and no password, query or fragment.
 */
export function urlProblem(text: string, rules: UrlRules): string | undefined {
  const schemes = rules.schemes.map((s) => `${s}://`).join(", ");
  const m =
    /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/s.exec(
      text,
    );
  if (!m) {
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(text)?.[0];
    return scheme && !rules.schemes.includes(scheme.slice(0, -1))
      ? `scheme ${scheme} is not one of ${schemes}`
      : `it is not of the form ${rules.schemes[0]}://host/path`;
  }
  const [, scheme = "", authority = "", path = "", query, fragment] = m;
  if (!rules.schemes.includes(scheme))
    return `scheme ${scheme}: is not one of ${schemes}`;
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const user = authority.slice(0, at);
    if (!(rules.userSchemes ?? []).includes(scheme))
      return "it names a user or password before the host: credentials never go into a lab file";
    if (user.includes(":"))
      return "it carries a password: credentials never go into a lab file";
    if (!/^[A-Za-z0-9._-]+$/.test(user))
      return `user name ${JSON.stringify(user)} has characters other than letters, digits, ., _ and -`;
  }
  const hostPort = authority.slice(at + 1);
  if (hostPort.startsWith("["))
    return "its host is an IPv6 address: use a host name or an IPv4 address";
  const colon = hostPort.lastIndexOf(":");
  const host = colon >= 0 ? hostPort.slice(0, colon) : hostPort;
  const port = colon >= 0 ? hostPort.slice(colon + 1) : undefined;
  if (host === "") return "it has no host";
  // Host names are case-insensitive in URLs; the problem is told about the host as written.
  const badHost =
    hostProblem(host.toLowerCase()) === undefined
      ? undefined
      : hostProblem(host);
  if (badHost !== undefined)
    return `host ${JSON.stringify(host)} is not a DNS name or IPv4 address: ${badHost}`;
  if (
    port !== undefined &&
    (!/^[1-9]\d{0,4}$/.test(port) || Number(port) > 65535)
  )
    return `port ${JSON.stringify(port)} is not a number from 1 to 65535`;
  if (!URL_PATH_RE.test(path)) {
    const bad = /[^A-Za-z0-9._~+=,:@/%-]|%(?![0-9A-Fa-f]{2})/u.exec(path)![0];
    return bad === "%"
      ? "its path has a % not followed by two hex digits"
      : `its path has the character ${JSON.stringify(bad)}, which is not allowed`;
  }
  if (rules.pathRequired && path.replace(/\//g, "") === "")
    return "it names a server but no repository path";
  if (query !== undefined) return "it has a query string";
  if (fragment !== undefined) return "it has a fragment";
  // The renderers read it with `new URL`, as its consumers do: it must parse there too.
  if (!URL.canParse(text)) return "URL parsers do not accept it";
  return undefined;
}

const url = (rules: UrlRules, what: string, example: string) =>
  checked(
    (s) => urlProblem(s, rules),
    what,
    `for example ${JSON.stringify(example)}`,
  );
const Port = z
  .number({
    error: err("must be a port number", "use a whole number from 1 to 65535"),
  })
  .int({
    error: err("must be a whole number", "use a whole number from 1 to 65535"),
  })
  .min(1, {
    error: err("must be at least 1", "use a whole number from 1 to 65535"),
  })
  .max(65535, {
    error: err("must be at most 65535", "use a whole number from 1 to 65535"),
  });
const nonEmpty = <T extends z.ZodType>(
  item: T,
  what: string,
  example: string,
) =>
  z.array(item).min(1, {
    error: err(`needs at least one ${what}`, `for example [${example}]`),
  });

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

/** WireGuard public keys are 32 bytes in base64: 43 characters, the last one limited, and one `=`. */
const WG_KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

const WireGuardSchema = z.strictObject({
  type: z.literal("wireguard"),
  remote: Host,
  public_key: pattern(
    WG_KEY_RE,
    "the lab's WireGuard public key: base64 of 32 bytes",
    "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
  ).refine((k) => !/^A{43}=$/.test(k), {
    // The all-zero key is no point a handshake can use: a placeholder left in the lab file.
    error: err(
      "is the all-zero key, a placeholder rather than the lab's key",
      "paste the public key of the lab's WireGuard endpoint (`wg show <interface> public-key` there)",
    ),
  }),
  endpoint_port: Port.default(51820),
  keepalive: z
    .number({
      error: err(
        "must be a number of seconds",
        "use 0 (off) to 65535; 25 keeps NAT state alive",
      ),
    })
    .int()
    .min(0)
    .max(65535)
    .default(25),
});

const IpsecSchema = z.strictObject({
  type: z.literal("ipsec"),
  remote: Host,
  // libreswan's proposal syntax uses only these characters; validate.ts checks the grammar.
  ike: pattern(
    /^[A-Za-z0-9_+;,-]+$/,
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

/** The tunnel types, in the order the schema lists them (for hints). */
export const VPN_TYPES: readonly string[] = VpnSchema.options.map((o) =>
  String(o.shape.type.value),
);

const ZoneSchema = z.strictObject({
  runner_subnet: Cidr,
  worker_subnet: Cidr,
  nat_gateway_id: pattern(
    /^nat-[0-9a-f]{8,17}$/,
    "a NAT gateway id",
    "nat-0123456789abcdef0",
  ),
});

const RunnerVpnSchema = z.strictObject({
  /** Default: 1194 for openvpn, vpn.endpoint_port for wireguard; ipsec uses IKE's own ports. */
  port: Port.optional(),
  static_key: RunnerPath.optional(),
  key_direction: z
    .union([z.literal(0), z.literal(1)], {
      error: err(
        "must be 0 or 1",
        "the lab side uses the other direction; 1 is usual for clients",
      ),
    })
    .optional(),
  local_ip: Ipv4.optional(),
  remote_ip: Ipv4.optional(),
  cert: RunnerPath.optional(),
  key: RunnerPath.optional(),
  private_key_file: RunnerPath.optional(),
  address: Cidr.optional(),
  psk_file: RunnerPath.optional(),
});

const RunnerSchema = z.strictObject({
  name: pattern(/^[a-z][a-z0-9-]{0,30}$/, "a runner name", "foo-1"),
  zone: z.string({
    error: err("must be a zone name", "use one of the keys of aws.zones"),
  }),
  address: Ipv4,
  /** The runner's primary interface, which the uplink profile binds to. */
  interface: pattern(
    /^[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,14}$/,
    "a network interface name (at most 15 characters)",
    "eth0",
  )
    // Names the kernel keeps for its sysctl and bonding directories: NetworkManager refuses them.
    .refine((name) => !["all", "default", "bonding_masters"].includes(name), {
      error: err(
        "must not be all, default or bonding_masters, which the kernel reserves",
        'give the runner\'s real interface, for example "eth0"',
      ),
    })
    .default("eth0"),
  vpn: RunnerVpnSchema,
});

const EgressSchema = z.strictObject({
  // Anything with a slash or only digits and dots is meant as a CIDR; the rest as a host name.
  to: checked(
    (s) => (/^[\d./]+$|\//.test(s) ? cidrProblem(s) : dnsNameProblem(s)),
    "a lowercase host name or an IPv4 CIDR",
    "write a host under intranet.domains, e.g. beaker.foo.example.com, or a CIDR such as 10.20.5.0/24",
  ),
  ports: nonEmpty(Port, "port", "443"),
  protocol: z
    .enum(["tcp", "udp"], {
      error: err("must be tcp or udp", "leave it out for tcp"),
    })
    .default("tcp"),
});

const TriggerSchema = z.strictObject({
  name: pattern(/^[a-z0-9][a-z0-9_.-]*$/, "a trigger name", "rhel9"),
  git_url: url(
    {
      schemes: ["https", "http", "ssh", "git"],
      userSchemes: ["ssh"],
      pathRequired: true,
    },
    "a git repository URL",
    "https://gitlab.com/group/project.git",
  ),
  // git check-ref-format --branch's rules that matter here: no leading '-' or '/', no '..',
  // '//', trailing '/' or '.', no component starting with '.' or ending in '.lock', not HEAD.
  branch: pattern(
    /^(?!HEAD$)(?![-/.])(?!.*(\.\.|\/\/|\/\.|\.lock(?:\/|$)|[/.]$))[A-Za-z0-9._/-]+$/,
    "a git branch name",
    "main",
  ).refine((b) => b.split("/").every((part) => part.length <= 255), {
    // Git keeps a ref as a file under .git/refs: a part is a file or directory name.
    error: err(
      "has a part of over 255 characters, longer than a file name (git stores each part of a ref as one)",
      "use the branch's real name",
    ),
  }),
  // Each entry becomes a variable of the triggered pipeline: GitLab refuses a variable whose
  // name is not letters, digits and `_` (at most 255), and the trigger fails at run time.
  extra: z
    .record(
      pattern(
        /^[A-Za-z0-9_]{1,255}$/,
        "a GitLab CI/CD variable name (letters, digits and _)",
        "architectures",
      ),
      z
        .string({
          error: err(
            "must be a string",
            'quote the value, e.g. "x86_64 aarch64"',
          ),
        })
        // What a UTF-8 variable can carry: no unpaired surrogate (it has no UTF-8 form), no NUL
        // or other control character but tab, newline and carriage return.
        .regex(
          /^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uD800-\uDFFF]*$/u,
          {
            error: err(
              "must be text a pipeline variable can hold: it has a control character or an unpaired surrogate",
              "remove the character (an escape such as \\0 or \\uD83D in a double-quoted YAML string); tabs and line breaks are fine",
            ),
          },
        ),
    )
    .optional(),
});

const PipelineSchema = z.strictObject({
  // GitLab path segments; none may be `.` or `..`, nor start with `-` or `.`.
  // GitLab's path rules that hold for every path, old or new: letters, digits, `_`, `-` and
  // `.`, not starting with `-` or `.`, and no `.git` or `.atom` at the end. (Its newer rules
  // against special characters at an end or doubled apply only to paths made since, and older
  // projects keep theirs.)
  project: pattern(
    /^(?!.*\.(?:git|atom)$)(?![-.])[A-Za-z0-9_.-]+(\/(?![-.])[A-Za-z0-9_.-]+)+$/,
    "a GitLab project path",
    "group/subgroup/project",
  ),
  gitlab_url: url(
    { schemes: ["https", "http"] },
    "the http(s) URL of a GitLab instance",
    "https://gitlab.com",
  ).default("https://gitlab.com"),
  runner_tags: nonEmpty(
    pattern(/^[A-Za-z0-9_.:-]+$/, "a runner tag", "foo"),
    "tag",
    "foo",
  ).optional(),
  schedule: z.string({
    error: err(
      "must be a cron schedule",
      'five fields, for example "0 */4 * * *"',
    ),
  }),
  image: z
    .string({ error: IMAGE_ERROR })
    .refine(isImageReference, { error: IMAGE_ERROR })
    .default("quay.io/cki/cki-tools:production"),
  triggers: nonEmpty(
    TriggerSchema,
    "trigger",
    "{ name: rhel9, git_url: ..., branch: main }",
  ),
});

export const LabSchema = z.strictObject({
  version: z.literal(1, {
    error: err(
      `unsupported lab format version`,
      `this gen-lab reads version ${SUPPORTED_VERSIONS.join(", ")}; write \`version: 1\``,
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
      { schemes: ["https", "http"] },
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
    ami: pattern(/^ami-[0-9a-f]{8,17}$/, "an AMI id", "ami-0123456789abcdef0"),
    instance_type: pattern(
      /^[a-z][a-z0-9-]*\.[a-z0-9]+$/,
      "an EC2 instance type",
      "t3.medium",
    ).default("t3.medium"),
    internet_gateway_id: pattern(
      /^igw-[0-9a-f]{8,17}$/,
      "an internet gateway id",
      "igw-0123456789abcdef0",
    ),
    buckets: nonEmpty(
      pattern(
        /^[a-z0-9][a-z0-9-]*[a-z0-9]$|^[a-z0-9]$/,
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
        ZoneSchema,
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
  pipeline: PipelineSchema,
});

/** A lab file as written, with zod's defaults filled in. */
export type LabInput = z.output<typeof LabSchema>;
export type VpnInput = z.output<typeof VpnSchema>;
export type RunnerInput = LabInput["runners"][number];
