/**
 * One case per rule of lab-format.md: a small change to the example lab that breaks exactly
 * that rule, and the diagnostic it must produce: the file, the line of the offending node,
 * the YAML path, and words of the message. Then the CLI's contract for bad input: exit 2,
 * no stack trace, nothing written.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  checkLabs as checkAll,
  formatDiagnostic,
  generate,
  MANIFEST_NAME,
  type Diagnostic,
} from "../src/index.js";
import { excerpt } from "../src/render/report.js";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { otherLab, ROOT, runCli, tempDir } from "./helpers.js";

const FOO = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");
const FILE = "labs/foo.yaml";

/** The example lab is static-key, so every variant of it carries that warning (tested on its own below). */
const isStaticKeyWarning = (d: Diagnostic) =>
  d.path === "vpn.auth" && /OpenVPN 2\.7 refuses static-key/.test(d.message);

/** checkLabs without the static-key warning every variant of the example lab carries. */
function checkLabs(...args: Parameters<typeof checkAll>) {
  const result = checkAll(...args);
  return {
    ...result,
    diagnostics: result.diagnostics.filter((d) => !isStaticKeyWarning(d)),
  };
}

test("a static-key lab is warned about OpenVPN 2.7, at vpn.auth, with the way out", () => {
  const [d, ...rest] = checkAll([{ file: FILE, text: FOO }]).diagnostics;
  assert.equal(rest, []);
  assert.ok(d && isStaticKeyWarning(d), JSON.stringify(d));
  assert.is(d!.severity, "warning");
  assert.is(d!.line, lineOf(FOO, /^ {2}auth: static-key/));
  assert.match(d!.message, /--allow-deprecated-insecure-static-crypto/);
  assert.match(d!.hint, /vpn\.auth: tls/);
});

/** Replace one exact piece of the example lab (it must occur exactly once). */
function edit(text: string, from: string | RegExp, to: string): string {
  const count =
    typeof from === "string"
      ? text.split(from).length - 1
      : (text.match(new RegExp(from.source, `${from.flags}g`)) ?? []).length;
  assert.is(count, 1, `the edit target ${String(from)} occurs once`);
  return text.replace(from, to);
}

/** The 1-based line of the first line matching `at` (the line the diagnostic must name). */
function lineOf(text: string, at: RegExp, nth = 1): number {
  const lines = text
    .split("\n")
    .map((l, i) => (at.test(l) ? i + 1 : 0))
    .filter((n) => n > 0);
  assert.ok(lines.length >= nth, `${nth} line(s) match ${at}`);
  return lines[nth - 1]!;
}

/** The example lab with a WireGuard tunnel instead of OpenVPN: valid, and otherwise the same. */
/**
 * The example lab with other runner credentials: foo-1's static-key lines (key, direction and
 * tunnel addresses) become `runner1`, foo-2's flow mapping of them becomes `runner2`.
 */
function withRunnerVpn(text: string, runner1: string, runner2: string): string {
  const t = edit(
    text,
    /^      static_key: \/etc\/gen-lab\/foo\/foo-1\.key .*\n      key_direction: 1 .*\n      local_ip: 10\.255\.0\.2 .*\n      remote_ip: 10\.255\.0\.1\n/m,
    runner1,
  );
  return edit(
    t,
    "vpn: { port: 1195, static_key: /etc/gen-lab/foo/foo-2.key, local_ip: 10.255.0.6, remote_ip: 10.255.0.5 }",
    runner2,
  );
}

const WG_FOO = withRunnerVpn(
  [
    (t: string) => edit(t, "type: openvpn ", "type: wireguard "),
    (t: string) =>
      edit(
        t,
        /^  auth: static-key .*$/m,
        "  public_key: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
      ),
    (t: string) => edit(t, /^  protocol: udp .*\n/m, ""),
    (t: string) => edit(t, /^  cipher: AES-256-CBC .*\n/m, ""),
  ].reduce((t, f) => f(t), FOO),
  "      private_key_file: /etc/gen-lab/foo/foo-1.wg\n      address: 10.255.0.2/32\n",
  "vpn: { port: 51821, private_key_file: /etc/gen-lab/foo/foo-2.wg, address: 10.255.0.6/32 }",
);

/** The example lab on OpenVPN with certificates: a CA for the lab, a cert and key per runner. */
const TLS_FOO = withRunnerVpn(
  edit(
    FOO,
    /^  auth: static-key .*$/m,
    "  auth: tls\n  ca: /etc/gen-lab/foo/ca.crt",
  ),
  "      cert: /etc/gen-lab/foo/foo-1.crt\n      key: /etc/gen-lab/foo/foo-1.pem\n",
  "vpn: { port: 1195, cert: /etc/gen-lab/foo/foo-2.crt, key: /etc/gen-lab/foo/foo-2.pem }",
);

interface Case {
  readonly rule: string;
  readonly text: string;
  readonly path: string;
  /** A regex for the line the diagnostic must point at. */
  readonly at: RegExp;
  /** Which matching line, when several do (default the first). */
  readonly nth?: number;
  readonly message: RegExp;
  readonly severity?: "error" | "warning";
}

const cases: Case[] = [
  {
    rule: "unsupported version",
    text: edit(FOO, /^version: 1 /m, "version: 2 "),
    path: "version",
    at: /^version: 2/,
    message: /unsupported lab format version.*got 2.*version 1/,
  },
  {
    rule: "unknown key",
    text: edit(FOO, "nameservers: [", "nameserver: ["),
    path: "intranet.nameserver",
    at: /nameserver: \[/,
    message: /unknown key "nameserver".*did you mean "nameservers"/,
  },
  {
    rule: "bad lab name",
    text: edit(FOO, /^name: foo /m, "name: Foo_1 "),
    path: "name",
    at: /^name: Foo_1/,
    message: /lab name/,
  },
  {
    rule: "bad vpn type",
    text: edit(FOO, "type: openvpn ", "type: pptp "),
    path: "vpn.type",
    at: /type: pptp/,
    message: /openvpn, wireguard or ipsec/,
  },
  {
    rule: "a vpn type one letter off",
    text: edit(FOO, "type: openvpn ", "type: openvpm "),
    path: "vpn.type",
    at: /type: openvpm/,
    message: /got "openvpm".*did you mean "openvpn"/,
  },
  {
    rule: "no vpn type",
    text: edit(FOO, /^  type: openvpn .*\n/m, ""),
    path: "vpn.type",
    at: /^vpn:/,
    message:
      /missing required key "type".*add type: openvpn, wireguard or ipsec under vpn/,
  },
  {
    rule: "a YAML merge key",
    text: edit(
      FOO,
      "  - name: foo-2\n",
      "  - name: foo-2\n    <<: { zone: us-east-1b }\n",
    ),
    path: "runners[1].<<",
    at: /<<: \{ zone/,
    message: /merge key.*not read.*write the keys it would merge/,
  },
  {
    rule: "host bits set",
    text: edit(FOO, "cidrs: [10.20.0.0/16]", "cidrs: [10.20.0.1/16]"),
    path: "intranet.cidrs[0]",
    at: /cidrs: \[10\.20\.0\.1/,
    message: /host bits.*10\.20\.0\.0\/16/,
  },
  {
    rule: "subnet outside the VPC",
    text: edit(
      FOO,
      "runner_subnet: 172.31.200.16/28",
      "runner_subnet: 10.99.0.16/28",
    ),
    path: "aws.zones.us-east-1b.runner_subnet",
    at: /runner_subnet: 10\.99/,
    message: /not inside the VPC/,
  },
  {
    rule: "subnets overlap",
    text: edit(
      FOO,
      "worker_subnet: 172.31.212.0/22",
      "worker_subnet: 172.31.210.0/23",
    ),
    path: "aws.zones.us-east-1b.worker_subnet",
    at: /worker_subnet: 172\.31\.210/,
    message: /overlaps 172\.31\.208\.0\/22/,
  },
  {
    rule: "intranet overlaps the VPC",
    text: edit(
      FOO,
      "cidrs: [10.20.0.0/16]",
      "cidrs: [10.20.0.0/16, 172.31.128.0/17]",
    ),
    path: "intranet.cidrs[1]",
    at: /cidrs: \[10/,
    message: /overlaps the VPC/,
  },
  {
    rule: "intranet CIDRs overlap each other",
    text: edit(
      FOO,
      "cidrs: [10.20.0.0/16]",
      "cidrs: [10.20.0.0/16, 10.20.5.0/24]",
    ),
    path: "intranet.cidrs[1]",
    at: /cidrs: \[10/,
    message: /overlaps 10\.20\.0\.0\/16/,
  },
  {
    rule: "runner address outside its subnet",
    text: edit(FOO, "address: 172.31.200.20", "address: 172.31.200.40"),
    path: "runners[1].address",
    at: /address: 172\.31\.200\.40/,
    message: /not in us-east-1b's runner_subnet/,
  },
  {
    rule: "runner address reserved by AWS",
    text: edit(FOO, "address: 172.31.200.10 ", "address: 172.31.200.3 "),
    path: "runners[0].address",
    at: /address: 172\.31\.200\.3 /,
    message: /reserved by AWS in 172\.31\.200\.0\/28.*pick \.4-\.14/,
  },
  {
    rule: "broadcast address reserved",
    text: edit(FOO, "address: 172.31.200.10 ", "address: 172.31.200.15 "),
    path: "runners[0].address",
    at: /address: 172\.31\.200\.15/,
    message: /reserved by AWS/,
  },
  {
    rule: "two runners in one zone",
    text: edit(FOO, "zone: us-east-1b", "zone: us-east-1a"),
    path: "runners[1].zone",
    at: /^    zone: us-east-1a/m,
    nth: 2,
    message: /already has runner foo-1/,
  },
  {
    rule: "runner zone does not exist",
    text: edit(FOO, "zone: us-east-1b", "zone: us-east-1c"),
    path: "runners[1].zone",
    at: /zone: us-east-1c/,
    message: /not in aws\.zones/,
  },
  {
    rule: "zone without runner",
    text: edit(FOO, "zone: us-east-1b", "zone: us-east-1c"),
    path: "aws.zones.us-east-1b",
    at: /^    us-east-1b:/,
    message: /has no runner/,
  },
  {
    rule: "duplicate runner names",
    text: edit(FOO, "- name: foo-2", "- name: foo-1"),
    path: "runners[1].name",
    at: /- name: foo-1$/,
    message: /already used/,
  },
  {
    rule: "zone outside the region",
    text: edit(
      edit(FOO, "us-east-1b: {", "us-west-2b: {"),
      "zone: us-east-1b",
      "zone: us-west-2b",
    ),
    path: "aws.zones.us-west-2b",
    at: /us-west-2b: \{/,
    message: /not in region us-east-1/,
  },
  {
    rule: "shared credential",
    text: edit(
      FOO,
      "static_key: /etc/gen-lab/foo/foo-2.key",
      "static_key: /etc/gen-lab/foo/foo-1.key",
    ),
    path: "runners[1].vpn.static_key",
    at: /port: 1195, static_key/,
    message: /also used at runners\[0\]\.vpn\.static_key/,
  },
  {
    rule: "key material in the lab",
    text: edit(
      FOO,
      "cipher: AES-256-CBC ",
      'cipher: AES-256-CBC\n  ca: "-----BEGIN CERTIFICATE-----"\n ',
    ),
    path: "vpn.ca",
    at: /BEGIN CERTIFICATE/,
    message: /key or certificate material/,
  },
  {
    rule: "tunnel addresses collide",
    text: edit(FOO, "local_ip: 10.255.0.6", "local_ip: 10.255.0.2"),
    path: "runners[1].vpn.local_ip",
    at: /local_ip: 10\.255\.0\.2, remote_ip: 10\.255\.0\.5/,
    message: /also used at runners\[0\]\.vpn\.local_ip/,
  },
  {
    rule: "tunnel address inside the intranet",
    text: edit(FOO, "remote_ip: 10.255.0.5", "remote_ip: 10.20.0.5"),
    path: "runners[1].vpn.remote_ip",
    at: /remote_ip: 10\.20\.0\.5/,
    message: /inside the intranet/,
  },
  {
    rule: "tunnel address inside the VPC",
    text: edit(FOO, "remote_ip: 10.255.0.5", "remote_ip: 172.31.9.5"),
    path: "runners[1].vpn.remote_ip",
    at: /remote_ip: 172\.31\.9\.5/,
    message: /inside the VPC/,
  },
  {
    rule: "intranet on Docker's bridge",
    text: edit(
      FOO,
      "cidrs: [10.20.0.0/16]",
      "cidrs: [10.20.0.0/16, 172.17.0.0/24]",
    ),
    path: "intranet.cidrs[1]",
    at: /cidrs: \[10/,
    message: /Docker's default bridge/,
  },
  {
    rule: "tunnel address link-local",
    text: edit(FOO, "local_ip: 10.255.0.2", "local_ip: 169.254.0.2"),
    path: "runners[0].vpn.local_ip",
    at: /local_ip: 169\.254/,
    message: /link-local/,
  },

  {
    rule: "a VPN endpoint inside the intranet",
    text: edit(FOO, /remote: vpn\.foo\.example\.com/, "remote: 10.20.0.1"),
    path: "vpn.remote",
    at: /remote: 10\.20\.0\.1/,
    message: /lies in the intranet 10\.20\.0\.0\/16/,
  },
  {
    rule: "a VPN endpoint on loopback",
    text: edit(FOO, /remote: vpn\.foo\.example\.com/, "remote: 127.0.0.1"),
    path: "vpn.remote",
    at: /remote: 127\.0\.0\.1/,
    message: /127\.0\.0\.0\/8, loopback/,
  },
  {
    rule: "a VPN endpoint on the tunnel's own address",
    text: edit(FOO, /remote: vpn\.foo\.example\.com/, "remote: 10.255.0.1"),
    path: "vpn.remote",
    at: /remote: 10\.255\.0\.1/,
    message: /is an address of a runner or of a tunnel/,
  },
  ...[
    ["169.254.169.254", /169\.254\.0\.0\/16, link-local/],
    ["172.17.0.1", /172\.17\.0\.0\/16, Docker's default bridge/],
    ["172.31.200.10", /is an address of a runner/],
  ].map(([remote, message]): Case => ({
    rule: `a VPN endpoint at ${String(remote)}`,
    text: edit(
      FOO,
      /remote: vpn\.foo\.example\.com/,
      `remote: ${String(remote)}`,
    ),
    path: "vpn.remote",
    at: new RegExp(`remote: ${String(remote).replace(/\./g, "\\.")}`),
    message: message as RegExp,
  })),
  {
    rule: "an allow-list with no rule for Beaker's host and port warns",
    text: edit(
      FOO,
      "to: beaker.foo.example.com, ports: [80, 443, 8000]",
      "to: beaker.foo.example.com, ports: [80, 8000]",
    ),
    path: "egress",
    at: /^egress:/,
    message:
      /no rule lets the workers reach Beaker \(beaker\.foo\.example\.com, tcp port 443\)/,
    severity: "warning",
  },
  {
    rule: "an allow-list naming only other hosts warns, with Beaker's own port",
    text: edit(
      edit(
        FOO,
        "url: https://beaker.foo.example.com",
        "url: http://beaker.foo.example.com:8080",
      ),
      "to: beaker.foo.example.com, ports: [80, 443, 8000]",
      "to: lab.foo.example.com, ports: [8080]",
    ),
    path: "egress",
    at: /^egress:/,
    message: /beaker\.foo\.example\.com, tcp port 8080/,
    severity: "warning",
  },
  ...(
    [
      [
        "com",
        "s3\\.us-east-1\\.amazonaws\\.com \\(S3 and ECR of the region\\)",
      ],
      ["internal", "ip-10-0-0-1\\.ec2\\.internal \\(EC2's host names\\)"],
    ] as const
  ).map(([tld, hit]) => ({
    rule: `a top-level domain (${tld}) that takes names the pipeline or AWS need`,
    text: edit(FOO, "domains: [foo.example.com]", `domains: [${tld}]`),
    path: "intranet.domains[0]",
    at: /^ {2}domains: \[/,
    message: new RegExp(
      `${tld} is a whole top-level domain: every name under it would go to the lab's DNS, ${hit} among them`,
    ),
  })),

  ...[
    ["127.31", /127\.0\.0\.0\/8, loopback/],
    ["169.254", /169\.254\.0\.0\/16, link-local/],
    ["172.17", /172\.17\.0\.0\/16, Docker's default bridge/],
  ].map(([first, message]): Case => ({
    rule: `a VPC in ${String(first)}.0.0/16`,
    text: FOO.replace(/172\.31\./g, `${String(first)}.`),
    path: "aws.vpc_cidr",
    at: /vpc_cidr:/,
    message: message as RegExp,
  })),
  {
    rule: "a VPN endpoint written as a hex number",
    text: edit(FOO, /remote: vpn\.foo\.example\.com/, 'remote: "0x7f000001"'),
    path: "vpn.remote",
    at: /remote: "0x7f000001"/,
    message: /last label reads as a number/,
  },
  {
    rule: "a host with an xn-- label that is not punycode",
    text: edit(
      FOO,
      "url: https://beaker.foo.example.com",
      "url: https://xn--a.foo.example.com",
    ),
    path: "beaker.url",
    at: /url: https:\/\/xn--a\.foo/,
    message: /must be an http\(s\) URL/,
  },
  {
    rule: "a host whose last label reads as a hex number",
    text: edit(
      FOO,
      "gitlab_url: https://gitlab.com",
      "gitlab_url: https://gitlab.0x10",
    ),
    path: "pipeline.gitlab_url",
    at: /gitlab_url: https:\/\/gitlab\.0x10/,
    message: /must be the http\(s\) URL of a GitLab instance/,
  },
  {
    rule: "beaker outside the intranet domains",
    text: edit(
      FOO,
      "url: https://beaker.foo.example.com",
      "url: https://beaker.example.org",
    ),
    path: "beaker.url",
    at: /url: https:\/\/beaker\.example\.org/,
    message: /not under intranet\.domains/,
  },
  {
    rule: "egress host outside the domains",
    text: edit(FOO, "to: beaker.foo.example.com", "to: beaker.example.org"),
    path: "egress[0].to",
    at: /to: beaker\.example\.org/,
    message: /not under intranet\.domains/,
  },
  {
    rule: "egress CIDR outside the intranet",
    text: edit(FOO, "to: 10.20.5.0/24", "to: 10.30.5.0/24"),
    path: "egress[1].to",
    at: /to: 10\.30\.5\.0/,
    message: /not inside intranet\.cidrs/,
  },
  {
    rule: "egress port out of range",
    text: edit(FOO, "ports: [22]", "ports: [70000]"),
    path: "egress[1].ports[0]",
    at: /ports: \[70000\]/,
    message: /must be a whole number from 1 to 65535/,
  },
  {
    rule: "static-key needs nameservers",
    text: edit(FOO, /^  nameservers: .*$/m, ""),
    path: "intranet",
    at: /^intranet:/,
    message: /nameservers is required for openvpn static-key/,
  },
  {
    rule: "nameserver outside the intranet",
    text: edit(FOO, "nameservers: [10.20.0.53]", "nameservers: [10.21.0.53]"),
    path: "intranet.nameservers[0]",
    at: /nameservers: \[10\.21/,
    message: /not inside intranet\.cidrs/,
  },
  {
    rule: "static key missing",
    text: edit(FOO, "static_key: /etc/gen-lab/foo/foo-2.key, ", ""),
    path: "runners[1].vpn",
    at: /vpn: \{ port: 1195/,
    message: /static_key is required for openvpn static-key/,
  },
  {
    rule: "field of another auth mode",
    text: edit(
      FOO,
      "static_key: /etc/gen-lab/foo/foo-2.key, ",
      "static_key: /etc/gen-lab/foo/foo-2.key, cert: /etc/gen-lab/foo/foo-2.crt, ",
    ),
    path: "runners[1].vpn.cert",
    at: /cert: \/etc/,
    message: /cert is not used by openvpn static-key/,
  },
  {
    rule: "tls needs a CA",
    text: edit(FOO, "auth: static-key ", "auth: tls "),
    path: "vpn",
    at: /^vpn:/,
    message: /vpn\.ca is required/,
  },
  {
    rule: "bucket name too long",
    text: edit(
      FOO,
      "buckets: [artifacts]",
      "buckets: [artifacts-of-the-kernel-ci-pipelines-and-more-stuff]",
    ),
    path: "aws.buckets[0]",
    at: /buckets: \[artifacts-of/,
    message: /S3 allows 3 to 63/,
  },

  {
    rule: "bad cron schedule",
    text: edit(FOO, 'schedule: "0 */4 * * *"', 'schedule: "0 */4 * *"'),
    path: "pipeline.schedule",
    at: /schedule: "0/,
    message: /must be a cron schedule: five fields/,
  },
  ...["@every 1s", "@every 4m59s", "* * * * *", "*/2 * * * *"].map(
    (schedule): Case => ({
      rule: `a schedule that fires more often than every 5 minutes (${schedule})`,
      text: edit(FOO, 'schedule: "0 */4 * * *"', `schedule: "${schedule}"`),
      path: "pipeline.schedule",
      at: /^ {2}schedule: /,
      message: /runs the trigger more often than every 5 minutes/,
    }),
  ),
  ...[
    ["gitlab_url", "http://127.0.0.1:8080", /host 127\.0\.0\.1 is loopback/],
    [
      "gitlab_url",
      "https://gitlab.localhost",
      /is loopback, link-local or a cloud metadata/,
    ],
    [
      "definition_url",
      "http://169.254.169.254/latest/meta-data",
      /host 169\.254\.169\.254 is loopback, link-local or a cloud metadata service/,
    ],
    [
      "definition_url",
      "https://gitlab.com",
      /names a server but no repository/,
    ],
    [
      "git_url",
      "https://metadata.google.internal/computeMetadata.git",
      /host metadata\.google\.internal is loopback, link-local or a cloud metadata service/,
    ],
    [
      "git_url",
      "ssh://git@instance-data/kernel.git",
      /host instance-data is loopback/,
    ],
  ].map(([key, url, message]): Case => {
    const text =
      key === "definition_url"
        ? edit(FOO, /^ {2}gitlab_url: .*\n/m, `$&  definition_url: ${url}\n`)
        : edit(FOO, new RegExp(`^( +)${key}: \\S+`, "m"), `$1${key}: ${url}`);
    return {
      rule: `${key} ${url}: loopback, link-local, metadata or no repository`,
      text,
      path:
        key === "git_url" ? "pipeline.triggers[0].git_url" : `pipeline.${key}`,
      at: new RegExp(`${key}: ${String(url).replace(/[.]/g, "\\.")}`),
      message: message as RegExp,
    };
  }),
  ...[
    "redhat/other",
    "redhat/red-hat",
    "redhat/red-hat-ci-tools/kernel/cki-foo-pipelines",
  ].map((parent): Case => ({
    rule: `a parent_project the project does not lie in (${parent})`,
    text: edit(
      FOO,
      /^ {2}gitlab_url: .*\n/m,
      `$&  parent_project: ${parent}\n`,
    ),
    path: "pipeline.parent_project",
    at: /parent_project: /,
    message:
      /is not a group that pipeline\.project redhat\/red-hat-ci-tools\/kernel\/cki-foo-pipelines lies in.*leave it out/,
  })),
  {
    rule: "a parent_project that is no GitLab group path",
    text: edit(FOO, /^ {2}gitlab_url: .*\n/m, "$&  parent_project: /redhat\n"),
    path: "pipeline.parent_project",
    at: /parent_project: /,
    message: /must be a GitLab group path/,
  },
  {
    rule: "a deployment environment CKI's trigger does not know",
    text: edit(
      FOO,
      /^ {2}gitlab_url: .*\n/m,
      "$&  deployment_environment: retrigger\n",
    ),
    path: "pipeline.deployment_environment",
    at: /deployment_environment: /,
    message: /must be production or staging/,
  },
  {
    rule: "a token Secret name Kubernetes refuses",
    text: edit(FOO, /^ {2}gitlab_url: .*\n/m, "$&  token_secret: Foo_Token\n"),
    path: "pipeline.token_secret",
    at: /token_secret: /,
    message: /must be a Kubernetes Secret name/,
  },
  {
    rule: "a trigger name that is no branch name, as the default pipeline branch",
    text: edit(FOO, /^ {4}- name: rhel9 /m, "    - name: rhel9.lock "),
    path: "pipeline.triggers[0].name",
    at: /- name: rhel9\.lock/,
    message:
      /trigger name rhel9\.lock is no git branch name.*set pipeline_branch/,
  },
  {
    rule: "a pipeline branch git would refuse",
    text: edit(FOO, /^ {6}branch: main\n/m, "$&      pipeline_branch: -x\n"),
    path: "pipeline.triggers[0].pipeline_branch",
    at: /pipeline_branch: -x/,
    message: /must be a git branch name/,
  },
  {
    rule: "extra replaces the pipeline branch",
    text: edit(
      FOO,
      'extra: { architectures: "x86_64 aarch64" }',
      "extra: { cki_pipeline_branch: other }",
    ),
    path: "pipeline.triggers[0].extra.cki_pipeline_branch",
    at: /extra: \{ cki_pipeline_branch/,
    message:
      /extra key "cki_pipeline_branch" would replace what gen-lab writes/,
  },
  {
    rule: "duplicate trigger names",
    text: edit(
      FOO,
      '      extra: { architectures: "x86_64 aarch64" }             # optional free string map, passed through',
      "    - { name: rhel9, git_url: https://example.com/x.git, branch: main }",
    ),
    path: "pipeline.triggers[1].name",
    at: /- \{ name: rhel9/,
    message: /already defined/,
  },
  {
    rule: "wrong type",
    text: edit(FOO, "port: 1194 ", 'port: "1194" '),
    path: "runners[0].vpn.port",
    at: /port: "1194"/,
    message: /must be a whole number from 1 to 65535, got "1194"/,
  },
  {
    rule: "missing required key",
    text: edit(FOO, /^  ami: .*$/m, ""),
    path: "aws.ami",
    at: /^aws:/,
    message: /missing required key "ami"/,
  },
  {
    rule: "a missing version is a missing key, not an unsupported version",
    text: edit(FOO, /^version: 1 .*\n/m, ""),
    path: "version",
    at: /^name: foo/,
    message: /missing required key "version"/,
  },
  {
    rule: "a bucket name with a prefix S3 keeps for itself: change the prefix",
    text: edit(FOO, /^prefix: arr-cki/m, "prefix: xn--ab"),
    path: "aws.buckets[0]",
    at: /buckets: \[artifacts\]/,
    message: /starts or ends in a way S3 keeps for itself/,
  },
  {
    rule: "static-key without a cipher warns",
    text: edit(FOO, /^  cipher: AES-256-CBC .*\n/m, ""),
    path: "vpn",
    at: /^vpn:/,
    message: /BF-CBC/,
    severity: "warning",
  },
  ...["a.lock/b", "HEAD", "x/.hidden", "x..y"].map((branch): Case => ({
    rule: `branch ${branch}, which git check-ref-format --branch refuses`,
    text: edit(FOO, "branch: main", `branch: ${branch}`),
    path: "pipeline.triggers[0].branch",
    at: new RegExp(`branch: ${branch.replace(/\./g, "\\.")}`),
    message: /git branch name/,
  })),
  {
    rule: "a branch YAML reads as a number is shown as written",
    text: edit(FOO, "branch: main", "branch: 5.10"),
    path: "pipeline.triggers[0].branch",
    at: /branch: 5\.10/,
    message: /got the number 5\.10; quote it to keep it as written: "5\.10"/,
  },
  {
    rule: "branch git would refuse",
    text: edit(FOO, "branch: main", "branch: -rf"),
    path: "pipeline.triggers[0].branch",
    at: /branch: -rf/,
    message: /git branch name/,
  },
  {
    rule: "Docker's other pools warn",
    text: edit(FOO, "local_ip: 10.255.0.2", "local_ip: 192.168.255.2"),
    path: "runners[0].vpn.local_ip",
    at: /local_ip: 192\.168/,
    message: /Docker's default address pool 192\.168\.0\.0\/16/,
    severity: "warning",
  },

  {
    rule: "a zone named like an Object method is not a zone",
    text: edit(FOO, "zone: us-east-1b", "zone: toString"),
    path: "runners[1].zone",
    at: /zone: toString/,
    message: /zone "toString" is not in aws\.zones/,
  },
  {
    rule: "egress CIDR with a leading zero",
    text: edit(FOO, "to: 10.20.5.0/24", "to: 10.20.08.0/24"),
    path: "egress[1].to",
    at: /to: 10\.20\.08\.0/,
    message: /without leading zeros/,
  },
  {
    rule: "egress CIDR prefix above 32",
    text: edit(FOO, "to: 10.20.5.0/24", "to: 10.20.5.0/33"),
    path: "egress[1].to",
    at: /to: 10\.20\.5\.0\/33/,
    message: /prefix \/33 is not a number from 0 to 32/,
  },
  {
    rule: "egress host that is no DNS name",
    text: edit(
      FOO,
      "to: beaker.foo.example.com",
      "to: -beaker.foo.example.com",
    ),
    path: "egress[0].to",
    at: /to: -beaker/,
    message:
      /label "-beaker" is not 1-63 lowercase letters, digits and inner hyphens/,
  },
  {
    rule: "an IP address as intranet domain",
    text: edit(
      FOO,
      "domains: [foo.example.com]",
      "domains: [foo.example.com, 10.20.0.53]",
    ),
    path: "intranet.domains[1]",
    at: /domains: \[foo\.example\.com, 10/,
    message: /last label reads as a number/,
  },
  {
    rule: "zone of a region whose name merely starts with the lab's region",
    text: edit(
      edit(FOO, "us-east-1b: {", "us-east-12b: {"),
      "zone: us-east-1b",
      "zone: us-east-12b",
    ),
    path: "aws.zones.us-east-12b",
    at: /us-east-12b: \{/,
    message: /not in region us-east-1;.*its region and one letter/,
  },
  {
    rule: "gitlab_url of another scheme",
    text: edit(
      FOO,
      "gitlab_url: https://gitlab.com ",
      "gitlab_url: javascript:alert(1) ",
    ),
    path: "pipeline.gitlab_url",
    at: /gitlab_url: javascript/,
    message: /must be the http\(s\) URL of a GitLab instance/,
  },
  {
    rule: "git_url of another scheme",
    text: edit(
      FOO,
      "git_url: https://gitlab.com/redhat/centos-stream/src/kernel/centos-stream-9.git",
      "git_url: file:///srv/git/kernel.git",
    ),
    path: "pipeline.triggers[0].git_url",
    at: /git_url: file:/,
    message: /scheme file is not one of/,
  },
  {
    rule: "project path climbing out",
    text: edit(
      FOO,
      "project: redhat/red-hat-ci-tools/kernel/cki-foo-pipelines",
      "project: ../../etc",
    ),
    path: "pipeline.project",
    at: /project: \.\.\/\.\.\/etc/,
    message: /GitLab project path/,
  },
  ...["group/project.git", "group/project.atom"].map((project) => ({
    rule: `a project path GitLab refuses (${project})`,
    text: edit(
      FOO,
      "project: redhat/red-hat-ci-tools/kernel/cki-foo-pipelines",
      `project: ${project}`,
    ),
    path: "pipeline.project",
    at: new RegExp(`project: ${project.replace(/[.]/g, "\\.")}`),
    message: /GitLab project path/,
  })),
  {
    rule: "beaker host with shell syntax",
    text: edit(
      FOO,
      "url: https://beaker.foo.example.com",
      "url: https://$(touch${IFS}x)`id`;reboot;.foo.example.com",
    ),
    path: "beaker.url",
    at: /url: https:\/\/\$\(touch/,
    message: /has characters other than letters, digits/,
  },
  {
    rule: "WireGuard address routing everything into the tunnel",
    text: edit(
      WG_FOO,
      /^      address: 10\.255\.0\.2\/32$/m,
      "      address: 10.255.0.2/0",
    ),
    path: "runners[0].vpn.address",
    at: /address: 10\.255\.0\.2\/0/,
    message: /tunnel address 0\.0\.0\.0\/0 is inside the VPC/,
  },
  {
    rule: "more intranet ranges than AWS's default route quota warns",
    text: edit(
      FOO,
      "cidrs: [10.20.0.0/16]",
      `cidrs: [10.20.0.0/16, ${Array.from({ length: 49 }, (_, i) => `10.30.${i}.0/24`).join(", ")}]`,
    ),
    path: "intranet.cidrs",
    at: /^ {2}cidrs: \[/,
    message: /50 intranet ranges make more routes.*default quota \(50\)/,
    severity: "warning",
  },
  {
    rule: "a problem inside an aliased node is shown at the alias",
    text: edit(
      edit(FOO, "  - name: foo-1 ", "  - &r1\n    name: foo-1 "),
      /^  - name: foo-2\n.*\n.*\n.*\n/m,
      "  - *r1\n",
    ),
    path: "runners[1].name",
    at: /^ {2}- \*r1$/,
    message: /runner name foo-1 is already used by runners\[0\]/,
  },

  {
    rule: "an invisible character between schedule fields",
    text: edit(FOO, 'schedule: "0 */4 * * *"', 'schedule: "0\uFEFF*/4 * * *"'),
    path: "pipeline.schedule",
    at: /schedule: "0\uFEFF/,
    message: /must be a cron schedule/,
  },
  {
    rule: "whitespace around a schedule, which Kubernetes does not trim",
    text: edit(FOO, 'schedule: "0 */4 * * *"', 'schedule: " @hourly"'),
    path: "pipeline.schedule",
    at: /schedule: " @hourly"/,
    message: /must be a cron schedule/,
  },
  {
    rule: "WireGuard without nameservers warns",
    text: edit(WG_FOO, /^  nameservers: .*\n/m, ""),
    path: "intranet",
    at: /^intranet:/,
    message:
      /no intranet\.nameservers for wireguard.*list the lab's DNS servers/,
    severity: "warning",
  },
  {
    rule: "key material in a comment",
    text: edit(
      FOO,
      "      # ipsec: psk_file: /path\n",
      "      # ipsec: psk_file: /path\n# old key:\n# -----BEGIN OpenVPN Static key V1-----\n# 6acef03f62675b4b1bbd03e53b187727\n# -----END OpenVPN Static key V1-----\n",
    ),
    path: "",
    at: /^# -----BEGIN OpenVPN/,
    message: /contains key or certificate material/,
  },
  {
    rule: "VPC CIDR larger than AWS allows",
    text: edit(FOO, "vpc_cidr: 172.31.0.0/16 ", "vpc_cidr: 172.30.0.0/15 "),
    path: "aws.vpc_cidr",
    at: /vpc_cidr: 172\.30\.0\.0\/15/,
    message: /larger than AWS allows/,
  },
  {
    rule: "subnet smaller than AWS allows",
    text: edit(
      FOO,
      "worker_subnet: 172.31.208.0/22",
      "worker_subnet: 172.31.208.0/31",
    ),
    path: "aws.zones.us-east-1a.worker_subnet",
    at: /worker_subnet: 172\.31\.208\.0\/31/,
    message: /smaller than AWS allows/,
  },
  {
    rule: "intranet on loopback",
    text: edit(
      FOO,
      "cidrs: [10.20.0.0/16]",
      "cidrs: [10.20.0.0/16, 127.0.0.0/8]",
    ),
    path: "intranet.cidrs[1]",
    at: /cidrs: \[10/,
    message: /intranet CIDR 127\.0\.0\.0\/8 overlaps 127\.0\.0\.0\/8, loopback/,
  },
  {
    rule: "tunnel address in 0.0.0.0/8",
    text: edit(FOO, "local_ip: 10.255.0.2 ", "local_ip: 0.0.0.0 "),
    path: "runners[0].vpn.local_ip",
    at: /local_ip: 0\.0\.0\.0/,
    message: /tunnel address 0\.0\.0\.0 overlaps 0\.0\.0\.0\/8/,
  },
  {
    rule: "multicast WireGuard address",
    text: edit(
      WG_FOO,
      /^      address: 10\.255\.0\.2\/32$/m,
      "      address: 239.255.0.2/32",
    ),
    path: "runners[0].vpn.address",
    at: /address: 239\.255\.0\.2/,
    message:
      /tunnel address 239\.255\.0\.2 overlaps 224\.0\.0\.0\/3, multicast/,
  },
  {
    rule: "two static-key runners on one server port",
    text: edit(FOO, "vpn: { port: 1195, ", "vpn: { port: 1194, "),
    path: "runners[1].vpn.port",
    at: /vpn: \{ port: 1194, static_key/,
    message:
      /port 1194 on vpn\.foo\.example\.com is also the port of runner foo-1 \(runners\[0\]\)/,
  },
  {
    rule: "two static-key runners on the default port",
    text: edit(FOO, "vpn: { port: 1195, ", "vpn: { "),
    path: "runners[1].vpn",
    at: /vpn: \{ static_key: \/etc\/gen-lab\/foo\/foo-2/,
    message: /port 1194 \(the default\).*runner foo-1/,
  },
  // YAML the format has no use for, found in the syntax tree (no YAML path: it is not data).
  {
    rule: "an unknown YAML tag is not ignored",
    text: edit(FOO, "environment: prod", "environment: !custom prod"),
    path: "",
    at: /^environment: !custom/,
    message: /Unresolved tag: !custom/,
  },

  {
    rule: "an alias inside the node it refers to",
    text: edit(FOO, "runner_tags: [foo]", "runner_tags: &t [foo, *t]"),
    path: "pipeline.runner_tags[1]",
    at: /runner_tags: &t/,
    message: /must be|expected string/,
  },
  {
    rule: "an alias to no anchor",
    text: edit(FOO, "runner_tags: [foo]", "runner_tags: *nope"),
    path: "",
    at: /runner_tags: \*nope/,
    message: /Unresolved alias.*nope/,
  },
  {
    rule: "more workers than the worker subnet holds",
    text: edit(
      FOO,
      "\npipeline:",
      "\nworkers: { max_instances: 2000 }\n\npipeline:",
    ),
    path: "aws.zones.us-east-1a.worker_subnet",
    at: /worker_subnet: 172\.31\.208\.0\/22/,
    message: /holds 1019 workers, fewer than workers\.max_instances \(2000\)/,
  },
  {
    rule: "the docker+machine executor warns of its removal",
    text: edit(
      FOO,
      "\npipeline:",
      "\nworkers:\n  executor: docker+machine\n\npipeline:",
    ),
    path: "workers.executor",
    at: /executor: docker\+machine/,
    message: /removed in GitLab 20\.0 \(May 2027\)/,
    severity: "warning",
  },
  {
    rule: "a gitlab-runner too old for docker-autoscaler",
    text: edit(
      FOO,
      "\npipeline:",
      "\nworkers:\n  gitlab_runner_version: 16.5.0\n\npipeline:",
    ),
    path: "workers.gitlab_runner_version",
    at: /gitlab_runner_version: 16\.5\.0/,
    message: /has no generally available docker-autoscaler executor/,
  },
  {
    rule: "zero workers",
    text: edit(
      FOO,
      "\npipeline:",
      "\nworkers: { max_instances: 0 }\n\npipeline:",
    ),
    path: "workers.max_instances",
    at: /max_instances: 0/,
    message: /must be a whole number of at least 1/,
  },
  {
    rule: "a runner's SSM parameter that is another runner's",
    text: edit(
      FOO,
      "    address: 172.31.200.20\n",
      "    address: 172.31.200.20\n    ssm_parameters: { static_key: /arr-cki/prod/foo/foo-1/static_key }\n",
    ),
    path: "runners[1].ssm_parameters.static_key",
    at: /ssm_parameters: \{ static_key/,
    message: /is also the parameter of runners\[0\]/,
  },
  {
    rule: "a credential's SSM parameter where gen-lab keeps the runner token",
    text: edit(
      FOO,
      "    address: 172.31.200.20\n",
      "    address: 172.31.200.20\n    ssm_parameters: { static_key: /arr-cki/prod/foo/foo-2/runner-token }\n",
    ),
    path: "runners[1].ssm_parameters.static_key",
    at: /ssm_parameters: \{ static_key/,
    message: /the one gen-lab keeps a runner's token/,
  },
  {
    rule: "an SSM parameter name AWS keeps for itself",
    text: edit(
      FOO,
      "    address: 172.31.200.20\n",
      "    address: 172.31.200.20\n    ssm_parameters: { static_key: /aws/reference/x }\n",
    ),
    path: "runners[1].ssm_parameters.static_key",
    at: /ssm_parameters: \{ static_key/,
    message: /must be a fully qualified SSM parameter name/,
  },
  {
    rule: "an SSM parameter for no credential field",
    text: edit(
      FOO,
      "    address: 172.31.200.20\n",
      "    address: 172.31.200.20\n    ssm_parameters: { token: /x/y }\n",
    ),
    path: "runners[1].ssm_parameters.token",
    at: /ssm_parameters: \{ token/,
    message:
      /unknown key "token".*allowed here: ca, cert, key, private_key_file, psk_file, static_key/,
  },
];

test("the WireGuard variant of the example lab is valid", () => {
  const result = checkLabs([{ file: FILE, text: WG_FOO }]);
  assert.equal(
    result.diagnostics.map((d) => formatDiagnostic(d)),
    [],
  );
});

test("schedules Kubernetes accepts are valid (robfig/cron v3 ParseStandard)", () => {
  for (const schedule of [
    "0 0 * * 0-6",
    "0 0 * * SUN,sat",
    "0 0 ? JAN-dec *",
    "*/15\t2-20/2 1,15 * mon-fri",
    "@midnight",
    "@every 6h",
    "@every 1h30m",
    "@every 5m",
    "*/5 * * * *",
    // Days some named month has, February 29 included, or a restricted day of the week
    // (robfig then runs on either day field's match).
    "0 0 31 4,5 *",
    "0 0 29 2 *",
    "0 0 30 2 mon",
    "0 0 30 2 */2",
    "0 0 31 2/2 *",
  ]) {
    const text = edit(
      FOO,
      'schedule: "0 */4 * * *"',
      `schedule: ${JSON.stringify(schedule)}`,
    );
    const result = checkLabs([{ file: FILE, text }]);
    assert.equal(
      result.diagnostics.map((d) => formatDiagnostic(d)),
      [],
      schedule,
    );
  }
});

test("a WireGuard lab without nameservers generates, with no DNS server on the tunnel", () => {
  const bare = checkLabs([
    { file: FILE, text: edit(WG_FOO, /^  nameservers: .*\n/m, "") },
  ]);
  const full = checkLabs([{ file: FILE, text: WG_FOO }]);
  assert.ok(bare.labs && full.labs);
  const without = new Map(generate(bare.labs).map((f) => [f.path, f]));
  const withDns = generate(full.labs);
  assert.equal(
    [...without.keys()],
    withDns.map((f) => f.path),
  );
  let keyfiles = 0;
  for (const f of withDns) {
    const g = without.get(f.path)!;
    // The manifest holds every file's checksum, so it differs with the keyfiles.
    if (f.path.endsWith(MANIFEST_NAME)) continue;
    // The runner's user data carries the keyfile.
    if (
      f.path.endsWith("/user-data.yaml") &&
      !f.path.endsWith("worker-user-data.yaml")
    )
      continue;
    if (!f.path.endsWith("/foo-vpn.nmconnection")) {
      assert.is(g.contents, f.contents, `${f.path} does not depend on DNS`);
      continue;
    }
    keyfiles++;
    // As for openvpn tls and ipsec: no dns= and no ignore-auto-dns=, the routing domains stay.
    assert.is(
      g.contents,
      f.contents.replace(/^(dns|ignore-auto-dns)=.*\n/gm, ""),
      f.path,
    );
    assert.match(f.contents, /^dns=10\.20\.0\.53;$/m);
    assert.match(g.contents, /^dns-search=~foo\.example\.com;$/m);
  }
  assert.is(keyfiles, 2, "one tunnel keyfile per runner");
});

function find(list: readonly Diagnostic[], c: Case): Diagnostic | undefined {
  return list.find(
    (d) =>
      d.path === c.path &&
      d.severity === (c.severity ?? "error") &&
      c.message.test(`${d.message}; ${d.hint}`),
  );
}

for (const c of cases) {
  test(`rule: ${c.rule}`, () => {
    const result = checkLabs([{ file: FILE, text: c.text }]);
    const d = find(result.diagnostics, c);
    assert.ok(
      d,
      `expected a diagnostic at ${c.path} matching ${c.message}; got:\n${result.diagnostics.map((x) => formatDiagnostic(x)).join("\n")}`,
    );
    assert.is(d!.file, FILE);
    assert.is(
      d!.line,
      lineOf(c.text, c.at, c.nth),
      `line of ${formatDiagnostic(d!)}`,
    );
    assert.ok(d!.hint.length > 0, "a hint says how to fix it");
    assert.ok(
      formatDiagnostic(d!).startsWith(`${FILE}:${d!.line}:${d!.column}: `),
    );
    if ((c.severity ?? "error") === "warning")
      assert.ok(result.labs, "a warning does not stop generation");
    else assert.is(result.labs, undefined, "an error stops generation");
  });
}

test("an allow-list that reaches Beaker by name or maybe by a CIDR with its port does not warn", () => {
  for (const egress of [
    "  - { to: beaker.foo.example.com, ports: [443] }",
    "  - { to: 10.20.0.0/16, ports: [22, 443] }",
  ]) {
    const text = edit(FOO, /^egress:[^]*?(?=\n\S)/m, `egress:\n${egress}`);
    const { labs, diagnostics } = checkLabs([{ file: FILE, text }]);
    assert.ok(labs, egress);
    assert.equal(diagnostics, [], egress);
  }
});

test("pipeline fields that are valid: a parent group above the project's own, a trigger with its own pipeline branch", () => {
  let text = edit(
    FOO,
    /^ {2}gitlab_url: .*\n/m,
    "$&  parent_project: redhat/red-hat-ci-tools\n  deployment_environment: staging\n  token_secret: cki.trigger-token\n",
  );
  text = edit(text, /^ {4}- name: rhel9 /m, "    - name: rhel9.lock ");
  text = edit(text, /^ {6}branch: main\n/m, "$&      pipeline_branch: rhel9\n");
  const { labs, diagnostics } = checkLabs([{ file: FILE, text }]);
  assert.equal(diagnostics, []);
  assert.is(labs![0]!.pipeline.parentProject, "redhat/red-hat-ci-tools");
  assert.is(labs![0]!.pipeline.projectName, "kernel/cki-foo-pipelines");
});

test("project paths GitLab made before its newer path rules stay valid", () => {
  for (const project of [
    "john_/pipelines",
    "_team/proj",
    "grp/my__proj",
    "grp/proj_",
  ]) {
    const text = edit(
      FOO,
      "project: redhat/red-hat-ci-tools/kernel/cki-foo-pipelines",
      `project: ${project}`,
    );
    const { labs, diagnostics } = checkLabs([{ file: FILE, text }]);
    assert.ok(labs, project);
    assert.equal(diagnostics, [], project);
  }
});

test("the intranet's own reverse zone is a routing domain like any other", () => {
  const text = edit(
    FOO,
    "domains: [foo.example.com]",
    "domains: [foo.example.com, 20.10.in-addr.arpa]",
  );
  const result = checkLabs([{ file: FILE, text }]);
  assert.equal(
    result.diagnostics.map((d) => formatDiagnostic(d)),
    [],
  );
});

test("a private top-level domain with the lab's own GitLab under it only warns", () => {
  const text = edit(
    edit(FOO, "domains: [foo.example.com]", "domains: [foo.example.com, corp]"),
    /^ {2}gitlab_url: .*$/m,
    "  gitlab_url: https://gitlab.corp",
  );
  const { labs, diagnostics } = checkLabs([{ file: FILE, text }]);
  assert.ok(labs);
  assert.equal(
    diagnostics.map((d) => [d.severity, d.path]),
    [["warning", "intranet.domains[1]"]],
  );
});

test("every problem is reported at once", () => {
  let text = edit(FOO, "address: 172.31.200.10 ", "address: 172.31.200.3 ");
  text = edit(text, "to: 10.20.5.0/24", "to: 10.30.5.0/24");
  text = edit(
    text,
    "worker_subnet: 172.31.212.0/22",
    "worker_subnet: 10.99.0.0/22",
  );
  const paths = checkLabs([{ file: FILE, text }]).diagnostics.map(
    (d) => d.path,
  );
  for (const p of [
    "runners[0].address",
    "egress[1].to",
    "aws.zones.us-east-1b.worker_subnet",
  ])
    assert.ok(paths.includes(p), `${p} in ${paths.join(", ")}`);
});
const crossCases: {
  rule: string;
  /** The lab given first (default the example). */
  first?: string;
  other: string;
  path: string;
  message: RegExp;
}[] = [
  {
    rule: "lab names unique",
    other: otherLab((t) => t.replace(/^name: bar /m, "name: foo ")),
    path: "name",
    message: new RegExp(
      `also used by labs/foo\\.yaml:${lineOf(FOO, /^name: foo /)}:`,
    ),
  },
  {
    rule: "intranet CIDRs of labs in one VPC",
    other: otherLab((t) =>
      t.replace(
        "cidrs: [10.30.0.0/16]",
        "cidrs: [10.30.0.0/16, 10.20.128.0/17]",
      ),
    ),
    path: "intranet.cidrs[1]",
    message:
      /overlaps intranet CIDR 10\.20\.0\.0\/16 of lab foo at labs\/foo\.yaml:/,
  },
  {
    rule: "subnets of labs in one VPC",
    other: otherLab((t) =>
      t.replace(
        "worker_subnet: 172.31.216.0/22",
        "worker_subnet: 172.31.208.0/22",
      ),
    ),
    path: "aws.zones.us-east-1a.worker_subnet",
    message: /overlaps subnet 172\.31\.208\.0\/22 of lab foo/,
  },
  {
    rule: "tunnel addresses of labs in one VPC",
    other: otherLab((t) =>
      t.replace("local_ip: 10.254.0.2", "local_ip: 10.255.0.2"),
    ),
    path: "runners[0].vpn.local_ip",
    message: /tunnel address 10\.255\.0\.2 overlaps/,
  },
  {
    rule: "routing domains of labs in one VPC",
    other: otherLab((t) =>
      t.replace(
        "domains: [bar.example.com]",
        "domains: [bar.example.com, lab.foo.example.com]",
      ),
    ),
    path: "intranet.domains[1]",
    message: /overlaps foo\.example\.com of lab foo/,
  },
  {
    rule: "credential paths across labs",
    other: otherLab((t) =>
      t.replace("/etc/gen-lab/bar/bar-2.key", "/etc/gen-lab/foo/foo-2.key"),
    ),
    path: "runners[1].vpn.static_key",
    message: /also used by labs\/foo\.yaml:/,
  },
  {
    rule: "the CA certificate path across labs",
    first: TLS_FOO,
    // otherLab keeps the CA path: the two labs share it.
    other: otherLab((t) => t, TLS_FOO),
    path: "vpn.ca",
    message: /ca\.crt is also used by labs\/foo\.yaml:\d+:\d+/,
  },
  {
    rule: "a runner key at another lab's CA certificate path",
    first: TLS_FOO,
    other: otherLab(
      (t) =>
        t
          .replace("ca: /etc/gen-lab/foo/ca.crt", "ca: /etc/gen-lab/bar/ca.crt")
          .replace(
            "key: /etc/gen-lab/bar/bar-2.pem",
            "key: /etc/gen-lab/foo/ca.crt",
          ),
      TLS_FOO,
    ),
    path: "runners[1].vpn.key",
    message: /ca\.crt is also used by labs\/foo\.yaml:\d+:\d+/,
  },
  {
    rule: "the same runner tags on one GitLab",
    other: otherLab((t) =>
      t.replace("runner_tags: [bar]", "runner_tags: [foo]"),
    ),
    path: "pipeline.runner_tags",
    message:
      /runner tags \[foo\] and lab foo's \[foo\] \(labs\/foo\.yaml:\d+:\d+\) on gitlab\.com: GitLab could run one lab's jobs on the other lab's runners/,
  },
  {
    rule: "runner tags that are all tags of another lab's runners",
    first: edit(FOO, "runner_tags: [foo]", "runner_tags: [foo, kernel]"),
    other: otherLab((t) =>
      t.replace("runner_tags: [bar]", "runner_tags: [kernel]"),
    ),
    path: "pipeline.runner_tags",
    message: /runner tags \[kernel\] and lab foo's \[foo, kernel\]/,
  },
  {
    rule: "runner tags that include every tag of another lab, the default one",
    first: edit(FOO, /^ {2}runner_tags: .*\n/m, ""),
    other: otherLab((t) =>
      t.replace("runner_tags: [bar]", "runner_tags: [bar, foo]"),
    ),
    path: "pipeline.runner_tags",
    message: /runner tags \[bar, foo\] and lab foo's \[foo\]/,
  },
  {
    rule: "WireGuard interface names cut to the same 15 characters",
    first: edit(WG_FOO, /^name: foo /m, "name: kernelcilab1foo "),
    other: otherLab(
      (t) => t.replace(/^name: bar /m, "name: kernelcilab1bar "),
      WG_FOO,
    ),
    path: "name",
    message:
      /the tunnel device wg-kernelcilab1 is also used by labs\/foo\.yaml:\d+:\d+ \(lab kernelcilab1foo\)/,
  },
  {
    rule: "OpenVPN device names cut to the same 15 characters",
    first: edit(FOO, /^name: foo /m, "name: kernelcilab1foo "),
    other: otherLab((t) => t.replace(/^name: bar /m, "name: kernelcilab1bar ")),
    path: "name",
    message:
      /the tunnel device tun-kernelcilab is also used by labs\/foo\.yaml:\d+:\d+ \(lab kernelcilab1foo\)/,
  },
  {
    rule: "one VPC, two CIDRs",
    other: otherLab((t) =>
      t.replace("vpc_cidr: 172.31.0.0/16", "vpc_cidr: 172.31.128.0/17"),
    ),
    path: "aws.vpc_cidr",
    message: /has vpc_cidr 172\.31\.0\.0\/16 in lab foo/,
  },
  {
    rule: "tunnel address inside another lab's intranet in one VPC",
    other: otherLab((t) =>
      t.replace("local_ip: 10.254.0.2", "local_ip: 10.20.9.2"),
    ),
    path: "runners[0].vpn.local_ip",
    message:
      /tunnel address 10\.20\.9\.2 overlaps intranet CIDR 10\.20\.0\.0\/16 of lab foo/,
  },
];

for (const c of crossCases) {
  test(`across labs: ${c.rule}`, () => {
    assert.ok(
      checkLabs([{ file: "labs/bar.yaml", text: otherLab((t) => t) }]).labs,
      "the other lab is valid alone",
    );
    const result = checkLabs([
      { file: FILE, text: c.first ?? FOO },
      { file: "labs/bar.yaml", text: c.other },
    ]);
    assert.is(result.labs, undefined);
    const d = result.diagnostics.find(
      (x) =>
        x.file === "labs/bar.yaml" &&
        x.path === c.path &&
        c.message.test(x.message),
    );
    assert.ok(
      d,
      `got:\n${result.diagnostics.map((x) => formatDiagnostic(x)).join("\n")}`,
    );
  });
}

test("a runner's key at the lab's CA certificate path is refused", () => {
  const text = edit(
    TLS_FOO,
    "key: /etc/gen-lab/foo/foo-2.pem",
    "key: /etc/gen-lab/foo/ca.crt",
  );
  const d = checkLabs([{ file: FILE, text }]).diagnostics;
  assert.equal(
    d.map((x) => [x.path, x.line, x.message]),
    [
      [
        "runners[1].vpn.key",
        lineOf(text, /key: \/etc\/gen-lab\/foo\/ca\.crt/),
        "/etc/gen-lab/foo/ca.crt is also used at vpn.ca",
      ],
    ],
  );
});

test("labs sharing runner tags on different GitLab instances, or a tag among others, generate together", () => {
  for (const [first, other] of [
    // Another instance: its runners never see the other's jobs.
    [
      FOO,
      otherLab((t) =>
        t
          .replace("runner_tags: [bar]", "runner_tags: [foo]")
          .replace(
            "gitlab_url: https://gitlab.com ",
            "gitlab_url: https://gitlab.bar.example.com ",
          ),
      ),
    ],
    // One shared tag, and each lab one of its own: each job needs its lab's own tag.
    [
      edit(FOO, "runner_tags: [foo]", "runner_tags: [foo, kernel]"),
      otherLab((t) =>
        t.replace("runner_tags: [bar]", "runner_tags: [bar, kernel]"),
      ),
    ],
  ]) {
    const result = checkLabs([
      { file: FILE, text: first! },
      { file: "labs/bar.yaml", text: other! },
    ]);
    assert.equal(
      result.diagnostics.filter((d) => d.severity === "error"),
      [],
    );
  }
});

test("the runner tag a conflict's hint suggests ends the conflict", () => {
  const first = edit(FOO, "runner_tags: [foo]", "runner_tags: [foo, bar]");
  for (const [tags, fixed] of [
    // bar's jobs would run on foo's runners: add a tag; foo already has "bar".
    ["[foo]", (tag: string) => `[foo, ${tag}]`],
    // The same tags: a tag of bar's own.
    ["[foo, bar]", (tag: string) => `[${tag}]`],
  ] as const) {
    const other = (t: string) =>
      otherLab((x) => x.replace("runner_tags: [bar]", `runner_tags: ${t}`));
    const d = checkLabs([
      { file: FILE, text: first },
      { file: "labs/bar.yaml", text: other(tags) },
    ]).diagnostics.find((x) => x.path === "pipeline.runner_tags");
    const tag = /(?:add (\S+) to runner_tags|runner_tags: \[(\S+)\])$/.exec(
      d?.hint ?? "",
    );
    assert.ok(tag, d?.hint);
    const suggested = tag![1] ?? tag![2]!;
    assert.is.not(suggested, "bar", "a tag the other lab has");
    const result = checkLabs([
      { file: FILE, text: first },
      { file: "labs/bar.yaml", text: other(fixed(suggested)) },
    ]);
    assert.equal(
      result.diagnostics.filter((x) => x.severity === "error"),
      [],
    );
  }
});

test("disjoint labs in one VPC generate together", () => {
  const result = checkLabs([
    { file: FILE, text: FOO },
    { file: "labs/bar.yaml", text: otherLab((t) => t) },
  ]);
  assert.equal(
    result.diagnostics.filter((d) => d.severity === "error"),
    [],
  );
  assert.is(result.labs?.length, 2);
});

const hostile: {
  name: string;
  bytes: () => string | Buffer;
  message: RegExp;
  /** `line:column` the first diagnostic must point at, when the input has one place to blame. */
  at?: string;
}[] = [
  {
    name: "YAML syntax error",
    bytes: () => "version: 1\nname: [foo\n",
    message: /YAML: /,
  },
  {
    name: "duplicate key",
    bytes: () => FOO.replace(/^name: foo /m, "name: foo\nname: bar "),
    message: /duplicate key/,
    at: `${lineOf(FOO, /^name: foo /) + 1}:1`,
  },
  { name: "empty file", bytes: () => "", message: /empty/ },
  {
    name: "only comments",
    bytes: () => "# nothing here\n\n",
    message: /empty/,
  },
  {
    name: "not a mapping",
    bytes: () => "- version: 1\n",
    message: /not a mapping/,
  },
  { name: "a scalar", bytes: () => "hello\n", message: /not a mapping/ },
  {
    name: "binary garbage",
    bytes: () =>
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
    message: /not UTF-8 text/,
    at: "1:1",
  },
  {
    name: "NUL byte in text",
    bytes: () => "version: 1\nname: f\0o\n",
    message: /YAML: |must be a lab name/,
  },
  {
    name: "two YAML documents",
    bytes: () => "version: 1\n---\nname: foo\n",
    message: /more than one YAML document/,
    at: "2:1",
  },
  {
    name: "10 MB file",
    bytes: () => "#".repeat(10_000_000),
    message: /more than a lab file may be/,
    at: "1:1",
  },
  {
    name: "nesting thousands of levels deep",
    bytes: () => `version: 1\nname: ${"[".repeat(20000)}${"]".repeat(20000)}\n`,
    message: /must be a lab name|YAML/,
  },
  {
    name: "alias bomb",
    bytes: () =>
      "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    message: /too many alias expansions/,
  },
  {
    name: "20,000 lines each using one alias",
    bytes: () =>
      `version: 1\nx: &x a\n${Array.from({ length: 20000 }, (_, i) => `k${i}: *x`).join("\n")}\n`,
    message: /too many alias expansions|unknown key/,
  },
  {
    name: "an alias to no anchor",
    bytes: () => "version: 1\nname: *zz\n",
    message: /Unresolved alias.*zz/,
    at: "2:7",
  },
  {
    name: "a %YAML 1.1 directive, which would read 0644 as octal",
    bytes: () => `%YAML 1.1\n---\n${FOO.replace("port: 1194 ", "port: 0644 ")}`,
    message: /the %YAML 1\.1 directive would read this file by other rules/,
    at: "1:1",
  },
  {
    name: "a Latin-1 byte in a value",
    bytes: () =>
      Buffer.concat([
        Buffer.from("version: 1\nname: caf"),
        Buffer.from([0xe9]),
        Buffer.from("\n"),
      ]),
    message: /not UTF-8 text/,
  },
  {
    name: "130,000 wrong values in one list",
    bytes: () =>
      `version: 1\nintranet:\n  cidrs: [${Array.from({ length: 130000 }, () => "x").join(", ")}]\n`,
    message: /more than a lab file may be|must be an IPv4 CIDR/,
  },
  {
    name: "a thousand equal intranet ranges",
    bytes: () =>
      FOO.replace(
        "cidrs: [10.20.0.0/16]",
        `cidrs: [${Array.from({ length: 1000 }, () => "10.20.0.0/16").join(", ")}]`,
      ),
    message: /overlaps 10\.20\.0\.0\/16/,
  },
  {
    name: "a list as a mapping key",
    bytes: () => FOO.replace(/^name: foo /m, "? [name, foo]\n: x\nname: foo "),
    message: /unknown key/,
  },
];

for (const h of hostile) {
  test(`hostile input through the CLI: ${h.name} -> exit 2, located, nothing written`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const lab = path.join(dir, "bad.yaml");
      fs.writeFileSync(lab, h.bytes());
      const out = path.join(dir, "out");
      const r = runCli([lab, "-o", out]);
      assert.is(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`${lab.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `),
      );
      assert.match(r.stderr, h.message);
      if (h.at) assert.ok(r.stderr.startsWith(`${lab}:${h.at}: `), r.stderr);
      assert.not.match(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, "no stack trace");
      assert.not.match(r.stderr, /Warning:/, "no warnings from libraries");
      assert.not.ok(fs.existsSync(out), "nothing written");
    } finally {
      cleanup();
    }
  });
}

test("a set with one bad lab writes nothing at all", () => {
  const { dir, cleanup } = tempDir();
  try {
    fs.writeFileSync(path.join(dir, "foo.yaml"), FOO);
    fs.writeFileSync(
      path.join(dir, "bar.yaml"),
      otherLab((t) =>
        t.replace("address: 172.31.201.10", "address: 172.31.201.1"),
      ),
    );
    const r = runCli([
      path.join(dir, "foo.yaml"),
      path.join(dir, "bar.yaml"),
      "-o",
      path.join(dir, "out"),
    ]);
    assert.is(r.status, 2);
    assert.match(
      r.stderr,
      /bar\.yaml:\d+:\d+: runners\[0\]\.address: .*reserved by AWS/,
    );
    assert.match(r.stderr, /nothing written/);
    assert.not.ok(fs.existsSync(path.join(dir, "out")));
  } finally {
    cleanup();
  }
});

test("a missing lab file is a located error, exit 2", () => {
  const r = runCli(["labs/nope.yaml", "-o", "/tmp/gen-lab-never-written"]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /^labs\/nope\.yaml:1:1: no such file/m);
  assert.not.ok(fs.existsSync("/tmp/gen-lab-never-written"));
});

test("an excerpt escapes control and bidi characters, with its caret under the same place", () => {
  const text = 'name: "a\u001b[2Jb\u202e"\n';
  const shown = excerpt(
    {
      severity: "error",
      file: "x.yaml",
      line: 1,
      column: 14,
      path: "name",
      message: "m",
      hint: "h",
    },
    text,
  );
  assert.not.match(shown, /[\u001b\u202e]/);
  const [line, caret] = shown.split("\n") as [string, string];
  assert.is(line, '  name: "a\\u{1B}[2Jb\\u{202E}"');
  // Column 14 is the U+202E: the caret stands under its escape.
  assert.is(caret.indexOf("^"), line.indexOf("\\u{202E}"));
});

function imageErrors(image: string): Diagnostic[] {
  const text = edit(
    FOO,
    "image: quay.io/cki/cki-tools:production",
    `image: "${image}"`,
  );
  return checkLabs([{ file: "labs/foo.yaml", text }]).diagnostics.filter(
    (d) => d.severity === "error",
  );
}

test("image references the distribution grammar allows are accepted", () => {
  for (const image of [
    "registry.example.com:5000/cki/cki-tools:production",
    "localhost:5000/tools",
    "ubuntu",
    "Registry.Example.COM/a_b/c__d/e---f.g:V1.2-rc_3",
    `quay.io/cki/cki-tools:production@sha256:${"0a".repeat(32)}`,
  ])
    assert.equal(imageErrors(image), [], image);
});

test("image references runtimes reject are refused, at the image", () => {
  for (const image of [
    "quay.io/a-/b",
    "a..b/c",
    "a___b",
    "cki./x",
    "quay.io/Cki/x",
    "quay.io/cki/x:-tag",
    `x:${"a".repeat(129)}`,
    "quay.io//x",
    "quay.io/cki/x@sha256:abc",
    `quay.io/cki/x@sha256:${"0123456789abcdef".repeat(2)}`,
    `quay.io/cki/x@sha256:${"0123456789ABCDEF".repeat(4)}`,
    `quay.io/cki/x@md5:${"0123456789abcdef".repeat(2)}`,
  ]) {
    const errors = imageErrors(image);
    assert.is(errors.length, 1, image);
    assert.is(errors[0]!.path, "pipeline.image", image);
    assert.match(errors[0]!.message, /must be a container image reference/);
  }
});

test.run();
