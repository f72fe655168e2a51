/**
 * The per-lab artifacts: Terraform JSON and the README, for the example lab and every valid
 * fixture (the trigger file and the Kubernetes trigger: trigger.test.ts). Each is parsed back
 * the way its consumer would read it, and checked against the lab it came from.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadAll } from "js-yaml";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { CronJob } from "kubernetes-types/batch/v1.js";
import type { ConfigMap } from "kubernetes-types/core/v1.js";
import { generate } from "../src/render/generate.js";
import { checkLabs, parseLab } from "../src/load.js";
import type { LabModel } from "../src/model.js";
import { paths } from "../src/render/paths.js";
import {
  k8sName,
  CRONJOB_NAME_MAX,
  triggerNames,
} from "../src/render/kubernetes.js";
import { tfNames } from "../src/render/terraform.js";
import { ROOT, validFixtures } from "./helpers.js";

const FOO = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");

/** The example lab and every valid fixture, parsed. */
const labs: { file: string; text: string }[] = [
  { file: "labs/foo.yaml", text: FOO },
  ...validFixtures().map((f) => ({
    file: path.relative(ROOT, f),
    text: fs.readFileSync(f, "utf8"),
  })),
];

function fileOf(lab: LabModel, p: string): string {
  const f = generate(lab).find((g) => g.path === p);
  assert.ok(f, `${p} is generated`);
  return f!.contents;
}

// Loose on purpose: the test reads the file as any consumer would, not through gen-lab's types.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function tf(lab: LabModel): Json {
  return JSON.parse(fileOf(lab, paths.terraform(lab))) as Json;
}

const ref = (type: string, name: string, attr: string) =>
  `\${${type}.${name}.${attr}}`;

for (const { file, text } of labs) {
  const lab = parseLab(text, file);

  test(`${file}: terraform: provider, one subnet pair and route tables per zone`, () => {
    const t = tf(lab);
    assert.is(t.terraform.required_providers.aws.source, "hashicorp/aws");
    assert.match(t.terraform.required_providers.aws.version, /\d/);
    assert.equal(t.provider, {
      aws: { region: lab.aws.region },
      gitlab: { base_url: `${lab.pipeline.gitlabUrl}/api/v4/` },
    });
    const r = t.resource;
    assert.is(Object.keys(r.aws_subnet).length, 2 * lab.aws.zones.length);
    for (const zone of lab.aws.zones) {
      for (const [role, cidr] of [
        ["runner", zone.runnerSubnet],
        ["worker", zone.workerSubnet],
      ] as const) {
        const name = tfNames.subnet(lab, role, zone);
        assert.equal(r.aws_subnet[name], {
          vpc_id: lab.aws.vpcId,
          cidr_block: cidr,
          availability_zone: zone.name,
          tags: {
            Name: `${lab.prefix}.${lab.environment}.subnet.${lab.name}-${role}-${zone.name}`,
          },
        });
        assert.ok(r.aws_route_table[name], `route table ${name}`);
        assert.equal(r.aws_route_table_association[name], {
          subnet_id: ref("aws_subnet", name, "id"),
          route_table_id: ref("aws_route_table", name, "id"),
        });
      }
    }
  });

  test(`${file}: terraform: worker routes go to their zone's runner, the rest to NAT; runners to the IGW`, () => {
    const routes = Object.values(tf(lab).resource.aws_route) as Json[];
    for (const zone of lab.aws.zones) {
      const runner = lab.runners.find((x) => x.zone === zone.name)!;
      const workerTable = ref(
        "aws_route_table",
        tfNames.subnet(lab, "worker", zone),
        "id",
      );
      const inTable = routes.filter((x) => x.route_table_id === workerTable);
      const eni = ref(
        "aws_instance",
        tfNames.runner(lab, runner),
        "primary_network_interface_id",
      );
      assert.equal(
        inTable
          .filter((x) => x.network_interface_id !== undefined)
          .map((x) => [x.destination_cidr_block, x.network_interface_id]),
        lab.intranet.cidrs.map((c) => [c, eni]),
        `one route per intranet CIDR via ${runner.name}'s ENI in ${zone.name}`,
      );
      assert.equal(
        inTable.filter((x) => x.destination_cidr_block === "0.0.0.0/0"),
        [
          {
            route_table_id: workerTable,
            destination_cidr_block: "0.0.0.0/0",
            nat_gateway_id: zone.natGatewayId,
          },
        ],
      );
      assert.is(inTable.length, lab.intranet.cidrs.length + 1);
      const runnerTable = ref(
        "aws_route_table",
        tfNames.subnet(lab, "runner", zone),
        "id",
      );
      assert.equal(
        routes.filter((x) => x.route_table_id === runnerTable),
        [
          {
            route_table_id: runnerTable,
            destination_cidr_block: "0.0.0.0/0",
            gateway_id: lab.aws.internetGatewayId,
          },
        ],
      );
    }
  });

  test(`${file}: terraform: the runners' security group admits the worker subnets only, the workers' the runners only`, () => {
    const r = tf(lab).resource;
    assert.equal(Object.keys(r.aws_security_group).sort(), [
      tfNames.securityGroup(lab),
      tfNames.workersSecurityGroup(lab),
    ]);
    for (const g of Object.values(r.aws_security_group) as Json[])
      assert.not.ok(
        "ingress" in g || "egress" in g,
        "no inline rules beside the rule resources",
      );
    const runners = ref("aws_security_group", tfNames.securityGroup(lab), "id");
    const workers = ref(
      "aws_security_group",
      tfNames.workersSecurityGroup(lab),
      "id",
    );
    const ingress = Object.values(
      r.aws_vpc_security_group_ingress_rule,
    ) as Json[];
    const toRunners = ingress.filter((x) => x.security_group_id === runners);
    assert.equal(
      toRunners.map((x) => x.cidr_ipv4).sort(),
      [...lab.workerSubnets].sort(),
    );
    for (const rule of toRunners) {
      assert.is(rule.ip_protocol, "-1");
      assert.not.ok("from_port" in rule || "to_port" in rule);
    }
    assert.equal(
      ingress
        .filter((x) => x.security_group_id === workers)
        .map((x) => [x.referenced_security_group_id, x.from_port]),
      [[runners, 22]],
    );
    const egress = Object.values(
      r.aws_vpc_security_group_egress_rule,
    ) as Json[];
    assert.equal(
      egress.map((x) => [x.security_group_id, x.cidr_ipv4, x.ip_protocol]),
      [
        [runners, "0.0.0.0/0", "-1"],
        [workers, "0.0.0.0/0", "-1"],
      ],
    );
  });

  test(`${file}: terraform: runners are routers with IMDSv2 and an Elastic IP each`, () => {
    const t = tf(lab);
    const r = t.resource;
    assert.is(Object.keys(r.aws_instance).length, lab.runners.length);
    for (const runner of lab.runners) {
      const name = tfNames.runner(lab, runner);
      const zone = lab.aws.zones.find((z) => z.name === runner.zone)!;
      const i = r.aws_instance[name];
      assert.is(i.ami, lab.aws.ami);
      assert.is(i.instance_type, lab.aws.instanceType);
      assert.is(
        i.subnet_id,
        ref("aws_subnet", tfNames.subnet(lab, "runner", zone), "id"),
      );
      assert.is(i.private_ip, runner.address);
      assert.is(i.source_dest_check, false);
      assert.equal(i.metadata_options, {
        http_endpoint: "enabled",
        http_tokens: "required",
      });
      assert.equal(i.vpc_security_group_ids, [
        ref("aws_security_group", tfNames.securityGroup(lab), "id"),
      ]);
      assert.is(i.tags.Name, `${lab.name}-${runner.name}`);
      assert.is(r.aws_eip[name].domain, "vpc");
      assert.is(r.aws_eip[name].instance, ref("aws_instance", name, "id"));
      assert.ok(
        Object.values(t.output as Json).some(
          (o) => o.value === ref("aws_eip", name, "public_ip"),
        ),
        `an output with ${runner.name}'s public address`,
      );
    }
  });

  test(`${file}: terraform: buckets are private and encrypted, and their names are outputs`, () => {
    const t = tf(lab);
    const r = t.resource;
    assert.equal(
      (Object.values(r.aws_s3_bucket) as Json[]).map((b) => b.bucket),
      lab.aws.buckets.map((b) => b.name),
    );
    for (const b of lab.aws.buckets) {
      const name = tfNames.bucket(lab, b.purpose);
      const id = ref("aws_s3_bucket", name, "id");
      assert.equal(r.aws_s3_bucket_public_access_block[name], {
        bucket: id,
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
      const sse = r.aws_s3_bucket_server_side_encryption_configuration[name];
      assert.is(sse.bucket, id);
      assert.ok(
        ["AES256", "aws:kms"].includes(
          sse.rule[0].apply_server_side_encryption_by_default.sse_algorithm,
        ),
      );
      assert.ok(
        Object.values(t.output as Json).some(
          (o) => o.value === ref("aws_s3_bucket", name, "bucket"),
        ),
        `an output with bucket ${b.name}`,
      );
    }
  });

  test(`${file}: terraform: every \${...} names a resource of the same file, every name is valid`, () => {
    const t = tf(lab);
    const refs = fileOf(lab, paths.terraform(lab)).match(/\$\{[^}]*\}/g) ?? [];
    assert.ok(refs.length > 0);
    for (const r of refs) {
      if (/^\$\{(path\.module|base64)/.test(r)) continue; // file() of the runner's user data
      const m =
        /^\$\{(data\.)?((?:aws|gitlab)_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}$/.exec(
          r,
        );
      assert.ok(m, `${r} is a plain resource attribute reference`);
      assert.ok(
        (m![1] ? t.data : t.resource)[m![2]!]?.[m![3]!],
        `${r} points at a resource`,
      );
    }
    for (const [type, byName] of Object.entries(t.resource as Json))
      for (const name of Object.keys(byName as Json))
        assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_-]*$/, `${type}.${name}`);
    for (const name of Object.keys(t.output))
      assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_-]*$/);
  });

  test(`${file}: README: every runner's address and a mermaid flowchart`, () => {
    const f = generate(lab).find((g) => g.path === paths.readme(lab))!;
    assert.is(f.mode, 0o644);
    for (const r of lab.runners) {
      assert.ok(f.contents.includes(r.address), r.address);
      assert.ok(f.contents.includes(r.workerSubnet), r.workerSubnet);
    }
    assert.match(f.contents, /```mermaid\nflowchart /);
    assert.match(f.contents, /aws ssm put-parameter /);
    assert.match(f.contents, /terraform apply/);
    assert.ok(f.contents.includes(`iptables -S ${lab.chains.forward}`));
    assert.ok(f.contents.includes(`iptables -t nat -S ${lab.chains.nat}`));
    assert.ok(
      f.contents.includes(
        `resolvectl query ${new URL(lab.beakerUrl).hostname}`,
      ),
    );
    for (const r of lab.runners)
      for (const c of r.credentials)
        assert.ok(f.contents.includes(`--name ${c.parameter} `), c.parameter);
    // A first run of the trigger by hand, its log, and the pipeline branches that must exist.
    const cronJob = triggerNames(lab).name;
    const job = `${cronJob}-first-run`;
    for (const command of [
      `kubectl create job --from=cronjob/${cronJob} ${job}`,
      `kubectl logs --follow job/${job}`,
      `kubectl get job ${job}`,
    ])
      assert.ok(f.contents.includes(command), command);
    assert.ok(job.length <= 63, "a Job name is a label value");
    for (const t of lab.pipeline.triggers)
      assert.ok(f.contents.includes(`\`${t.pipelineBranch}\` (${t.name})`));
    // The deploy steps are numbered in order, one per runner, and every line that continues
    // a step is indented to its text (column 5), so Markdown keeps it in that step.
    const deploy = f.contents.slice(
      f.contents.indexOf("## Deploy"),
      f.contents.indexOf("## Check it"),
    );
    const steps = [...deploy.matchAll(/^(\d+)\.  ?\S/gm)].map((m) =>
      Number(m[1]),
    );
    assert.equal(steps, [1, 2, 3, 4]);
    const body = deploy.slice(deploy.search(/^1\. /m));
    for (const line of body.split("\n"))
      assert.ok(
        line === "" || /^\d+\. {1,2}\S/.test(line) || line.startsWith("    "),
        `not inside its step: ${JSON.stringify(line)}`,
      );
  });
}

test("kubernetes names: at most 52 characters, cut deterministically and kept unique", () => {
  const cases: [string, string][] = [
    ["arr-cki-prod-foo-trigger", "arr-cki-prod-foo-trigger"],
  ];
  for (const [input, expected] of cases) assert.is(k8sName(input), expected);
  const long = `${"a".repeat(20)}-${"b".repeat(10)}-${"c".repeat(16)}-trigger`;
  const other = `${"a".repeat(20)}-${"b".repeat(10)}-${"c".repeat(15)}d-trigger`;
  assert.is(k8sName(long).length, CRONJOB_NAME_MAX);
  assert.is(k8sName(long), k8sName(long));
  assert.is.not(k8sName(long), k8sName(other));
  assert.match(k8sName(long), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

  const lab = parseLab(
    FOO.replace("environment: prod ", "environment: production ")
      .replace("prefix: arr-cki ", "prefix: arr-cki-kernel-team ")
      .replace(/\bname: foo\b /, "name: foolabwithlongnm ")
      .replace(/foo\.example\.com/g, "foolabwithlongnm.example.com"),
    "long.yaml",
  );
  const [, cj] = loadAll(fileOf(lab, paths.kubernetes(lab))) as [
    ConfigMap,
    CronJob,
  ];
  assert.ok(cj.metadata!.name!.length <= CRONJOB_NAME_MAX);
});

/** The error diagnostics of a lab text, as `path: message`. */
function errors(text: string): string[] {
  return checkLabs([{ file: "labs/foo.yaml", text }])
    .diagnostics.filter((d) => d.severity === "error")
    .map((d) => `${d.path}: ${d.message}`);
}

const invalid: { what: string; text: string; error: RegExp }[] = [
  {
    what: "extra replaces the trigger's branch",
    text: FOO.replace(
      'extra: { architectures: "x86_64 aarch64" }',
      'extra: { architectures: "x86_64 aarch64", branch: other }',
    ),
    error: /^pipeline\.triggers\[0\]\.extra\.branch: extra key "branch"/,
  },
  {
    what: "extra overrides what every trigger inherits (gitlab_url, with a password)",
    text: FOO.replace(
      'extra: { architectures: "x86_64 aarch64" }',
      'extra: { gitlab_url: "https://user:pw@evil.example.com" }',
    ),
    error:
      /^pipeline\.triggers\[0\]\.extra\.gitlab_url: extra key "gitlab_url".*/,
  },
  {
    what: "extra uses gitrepo-trigger's .extends",
    text: FOO.replace(
      'extra: { architectures: "x86_64 aarch64" }',
      'extra: { ".extends": ".other" }',
    ),
    error:
      /^pipeline\.triggers\[0\]\.extra\.\.extends: key must be a pipeline variable name/,
  },
  {
    what: "an extra key GitLab refuses as a variable name",
    text: FOO.replace(
      'extra: { architectures: "x86_64 aarch64" }',
      'extra: { "kernel-config": "debug" }',
    ),
    error:
      /^pipeline\.triggers\[0\]\.extra\.kernel-config: key must be a pipeline variable name \(letters, digits and _, not starting with a digit\).*got "kernel-config"/,
  },
  {
    what: "prefix makes an sg- security group name",
    text: FOO.replace("prefix: arr-cki ", "prefix: sg-cki "),
    error:
      /^prefix: prefix sg-cki makes the runners' security group name start with sg-/,
  },
];
for (const c of invalid) {
  test(`validation: ${c.what}`, () => {
    assert.is.not(c.text, FOO, "the edit applied");
    const found = errors(c.text);
    assert.ok(
      found.some((e) => c.error.test(e)),
      `expected ${c.error}, got ${JSON.stringify(found)}`,
    );
  });
}

test.run();
