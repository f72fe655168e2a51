/**
 * The runner fleet as its consumers take it (issue 20): Terraform validates and plans every
 * lab's Terraform offline and its providers' schemas know every attribute; every IAM action
 * exists and is scoped to the runner's own objects; config.toml is TOML with only keys
 * gitlab-runner has; the security rules hold.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generate, parseLab, type LabModel } from "../src/index.js";
import { paths } from "../src/render/paths.js";
import { GOLDEN, ROOT, readTree, skipped, tempDir } from "./helpers.js";
import {
  findTerraform,
  gitlabSchema,
  withoutGitlab,
  type Block,
} from "./support/terraform.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const FOO = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");

/** Every golden lab, the example, and the example on docker+machine: as trees on disk. */
function labTrees(): { name: string; lab: LabModel; dir: string }[] {
  const out: { name: string; lab: LabModel; dir: string }[] = [];
  for (const c of fs.readdirSync(GOLDEN).sort())
    for (const l of fs.readdirSync(path.join(GOLDEN, c))) {
      const fixture = fs.readFileSync(
        path.join(ROOT, "test/fixtures", `${c}.yaml`),
        "utf8",
      );
      out.push({
        name: c,
        lab: parseLab(fixture, `test/fixtures/${c}.yaml`),
        dir: path.join(GOLDEN, c, l),
      });
    }
  out.push({
    name: "example",
    lab: parseLab(FOO, "labs/foo.yaml"),
    dir: path.join(ROOT, "out/foo"),
  });
  const machine = parseLab(
    FOO.replace(
      /\npipeline:/,
      "\nworkers:\n  executor: docker+machine\n\npipeline:",
    ),
    "labs/foo.yaml",
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-machine-"));
  for (const f of generate(machine)) {
    const p = path.join(dir, f.path.slice(machine.name.length + 1));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, f.contents, { mode: f.mode });
  }
  out.push({ name: "docker+machine", lab: machine, dir });
  return out;
}

const trees = labTrees();
const tfOf = (t: { lab: LabModel; dir: string }): Json =>
  JSON.parse(
    fs.readFileSync(
      path.join(t.dir, "terraform", `${t.lab.name}.tf.json`),
      "utf8",
    ),
  ) as Json;

/** Every resource of a Terraform JSON file: type, name, body. */
function resources(tf: Json): [string, string, Json][] {
  return Object.entries(
    tf.resource as Record<string, Record<string, Json>>,
  ).flatMap(([type, byName]) =>
    Object.entries(byName).map(([name, body]): [string, string, Json] => [
      type,
      name,
      body,
    ]),
  );
}

const terraform = findTerraform();
let awsSchema: Record<string, { block: Block }> | undefined;

for (const t of trees) {
  test(`${t.name}: terraform validate and an offline terraform plan accept the lab's Terraform`, () => {
    if (typeof terraform === "string") return skipped(terraform);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-plan-"));
    try {
      // The whole lab tree: the Terraform reads the runners' user data beside it.
      fs.cpSync(t.dir, dir, { recursive: true });
      const { main, override } = withoutGitlab(tfOf(t));
      const tfDir = path.join(dir, "terraform");
      fs.writeFileSync(
        path.join(tfDir, `${t.lab.name}.tf.json`),
        JSON.stringify(main),
      );
      fs.writeFileSync(
        path.join(tfDir, "zz_test_override.tf.json"),
        JSON.stringify(override),
      );
      for (const args of [
        ["init", "-input=false"],
        ["validate"],
        ["plan", "-refresh=false", "-input=false", "-lock=false"],
      ]) {
        const r = terraform.run(tfDir, args);
        assert.is(r.status, 0, `terraform ${args[0]}:\n${r.out.slice(-4000)}`);
        if (args[0] === "plan")
          assert.match(r.out, /Plan: \d+ to add, 0 to change, 0 to destroy/);
      }
      if (!awsSchema) {
        const r = terraform.run(tfDir, ["providers", "schema", "-json"]);
        assert.is(r.status, 0, r.out.slice(-4000));
        awsSchema = (JSON.parse(r.out.slice(r.out.indexOf("{"))) as Json)
          .provider_schemas["registry.terraform.io/hashicorp/aws"]
          .resource_schemas;
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** The paths in `body` the schema block does not have (`meta` arguments aside). */
function unknownPaths(body: Json, block: Block, at: string): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    if (
      ["depends_on", "lifecycle", "count", "for_each", "provider"].includes(
        key,
      ) &&
      at === ""
    )
      continue;
    const here = at === "" ? key : `${at}.${key}`;
    if (block.attributes?.[key]) continue;
    const nested = block.block_types?.[key];
    if (!nested) {
      out.push(here);
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value])
      out.push(...unknownPaths(item as Json, nested.block, here));
  }
  return out;
}

test("every AWS attribute and block exists in the provider's schema, every GitLab one in its bindings", () => {
  if (typeof terraform === "string") return skipped(terraform);
  assert.ok(awsSchema, "the provider's schema was read by the plan tests");
  const runner = gitlabSchema("gitlab_user_runner", false);
  const project = gitlabSchema("gitlab_project", true);
  for (const t of trees) {
    const tf = tfOf(t);
    for (const [type, name, body] of resources(tf)) {
      if (type === "gitlab_user_runner") {
        const unknown = Object.keys(body).filter(
          (k) => !runner.args.includes(k),
        );
        assert.equal(unknown, [], `${t.name}: ${type}.${name}`);
        continue;
      }
      const schema = awsSchema![type];
      assert.ok(schema, `${t.name}: ${type} is an AWS resource type`);
      assert.equal(
        unknownPaths(body, schema!.block, ""),
        [],
        `${t.name}: ${type}.${name}`,
      );
    }
    for (const body of Object.values(
      tf.data.gitlab_project as Record<string, Json>,
    ))
      assert.equal(
        Object.keys(body).filter((k) => !project.args.includes(k)),
        [],
        `${t.name}: data.gitlab_project`,
      );
  }
});

test("every ${...} names a resource of the same file and an attribute its type exports", () => {
  if (typeof terraform === "string") return skipped(terraform);
  const runner = gitlabSchema("gitlab_user_runner", false);
  const project = gitlabSchema("gitlab_project", true);
  for (const t of trees) {
    const tf = tfOf(t);
    const strings: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === "string") strings.push(v);
      else if (v && typeof v === "object") Object.values(v).forEach(walk);
    };
    walk(tf);
    const refs: string[] = [];
    for (const s of strings) {
      // A file of the lab's tree, read by a function: it must be there.
      const file =
        /^\$\{base64(?:gzip|encode)\(file\("\$\{path\.module\}\/([^"]+)"\)\)\}$/.exec(
          s,
        )?.[1];
      if (file) {
        assert.ok(
          fs.existsSync(path.join(t.dir, "terraform", file)),
          `${t.name}: ${s} reads a file of the lab's tree`,
        );
        continue;
      }
      for (const m of s.matchAll(/\$\{([^}]+)\}/g)) refs.push(m[1]!);
    }
    assert.ok(refs.length > 10, t.name);
    for (const expr of refs) {
      assert.match(
        expr,
        /^[\w.-]+$/,
        `${t.name}: ${expr} is a plain reference`,
      );
      const [kind, type, name, attr] = expr.startsWith("data.")
        ? expr.split(".")
        : ["resource", ...expr.split(".")];
      if (kind === "data") {
        assert.ok(
          tf.data[type!]?.[name!],
          `${t.name}: ${expr} names a data source of the file`,
        );
        assert.ok(
          project.exported.includes(attr!),
          `${t.name}: ${expr}: gitlab_project exports ${attr}`,
        );
        continue;
      }
      assert.ok(
        tf.resource[type!]?.[name!],
        `${t.name}: ${expr} names a resource of the file`,
      );
      const exported =
        type === "gitlab_user_runner"
          ? runner.exported.includes(attr!)
          : Boolean(awsSchema![type!]!.block.attributes?.[attr!]);
      assert.ok(exported, `${t.name}: ${expr}: ${type} exports ${attr}`);
    }
  }
});

/** Every IAM action AWS has, from iam-floyd (generated from AWS's service authorization reference). */
function iamActions(): Set<string> {
  const { Statement } = createRequire(import.meta.url)("iam-floyd") as {
    Statement: Record<string, unknown>;
  };
  const actions = new Set<string>();
  for (const [name, C] of Object.entries(Statement)) {
    if (typeof C !== "function" || name === "All") continue;
    const s = new (
      C as new () => {
        servicePrefix: string;
        accessLevelList: Record<string, string[]>;
      }
    )();
    for (const list of Object.values(s.accessLevelList ?? {}))
      for (const a of list) actions.add(`${s.servicePrefix}:${a}`);
  }
  return actions;
}

test("every IAM action exists, and each runner's role reaches only its own parameters, key, group and machines", () => {
  const known = iamActions();
  assert.ok(known.has("ssm:GetParameter") && !known.has("ssm:GetParameterz"));
  for (const t of trees) {
    const tf = tfOf(t);
    const lab = t.lab;
    for (const runner of lab.runners) {
      const name = `${lab.name}_runner_${runner.name}`.replace(/-/g, "_");
      const policy = JSON.parse(
        tf.resource.aws_iam_role_policy[name].policy,
      ) as {
        Statement: {
          Sid: string;
          Action: string[];
          Resource: string[];
          Condition?: Json;
        }[];
      };
      const statements = new Map(policy.Statement.map((s) => [s.Sid, s]));
      for (const s of policy.Statement)
        for (const a of s.Action)
          assert.ok(known.has(a), `${t.name}: ${a} is an IAM action`);
      const ssm = statements.get("ReadOwnParameters")!;
      const parameters = [
        runner.names.tokenParameter,
        ...runner.credentials.map((c) => c.parameter),
        ...(lab.workers.executor === "docker+machine"
          ? [runner.names.subnetParameter]
          : []),
      ];
      assert.equal(
        ssm.Resource,
        parameters.map((p) => `arn:aws:ssm:${lab.aws.region}:*:parameter${p}`),
        `${t.name}: ${runner.name} reads exactly its own parameters`,
      );
      assert.equal(statements.get("DecryptOwnParameters")!.Resource, [
        `\${aws_kms_key.${lab.name}_runners.arn}`,
      ]);
      const everything = policy.Statement.filter((s) =>
        s.Resource.includes("*"),
      );
      for (const s of everything)
        for (const a of s.Action)
          assert.match(
            a,
            /^(ec2:Describe|autoscaling:Describe|ec2:RunInstances$|ec2:CreateTags$)/,
            `${t.name}: ${a} on *`,
          );
      if (lab.workers.executor === "docker-autoscaler") {
        const group = `\${aws_autoscaling_group.${lab.name}_workers_${runner.name.replace(/-/g, "_")}.arn}`;
        assert.equal(statements.get("ScaleOwnGroup")!.Resource, [group]);
        assert.equal(statements.get("ConnectToOwnWorkers")!.Condition, {
          StringEquals: {
            "ec2:ResourceTag/aws:autoscaling:groupName": runner.names.workers,
          },
        });
      } else {
        assert.equal(statements.get("ManageOwnMachines")!.Condition, {
          StringLike: {
            "ec2:ResourceTag/Name": runner.names.machine.replace("%s", "*"),
          },
        });
      }
    }
  }
});

test("security: no ingress from anywhere, IMDSv2 and encrypted volumes on every instance and template, one group per runner", () => {
  for (const t of trees) {
    const tf = tfOf(t);
    for (const [type, name, body] of resources(tf)) {
      if (type === "aws_vpc_security_group_ingress_rule")
        assert.not.equal(body.cidr_ipv4, "0.0.0.0/0", `${t.name}: ${name}`);
      if (type === "aws_instance") {
        assert.is(body.metadata_options.http_tokens, "required", name);
        assert.is(body.root_block_device.encrypted, true, name);
        assert.is(body.user_data_replace_on_change, true, name);
      }
      if (type === "aws_launch_template") {
        assert.is(body.metadata_options.http_tokens, "required", name);
        assert.is(
          body.network_interfaces[0].associate_public_ip_address,
          false,
          name,
        );
        for (const d of body.block_device_mappings)
          assert.is(d.ebs.encrypted, true, name);
      }
    }
    const groups = Object.values(
      (tf.resource.aws_autoscaling_group ?? {}) as Record<string, Json>,
    );
    if (t.lab.workers.executor === "docker-autoscaler") {
      assert.is(
        groups.length,
        t.lab.runners.length,
        `${t.name}: one group per runner`,
      );
      for (const g of groups) {
        assert.equal(
          [g.min_size, g.desired_capacity, g.protect_from_scale_in],
          [0, 0, true],
        );
        assert.ok(g.max_size > 0);
        assert.equal(g.suspended_processes, ["AZRebalance"]);
        assert.equal(g.lifecycle.ignore_changes, ["desired_capacity"]);
        assert.is(
          g.vpc_zone_identifier.length,
          1,
          "the group lives in its zone's worker subnet",
        );
      }
      const ports = resources(tf)
        .filter(
          ([type, , b]) =>
            type === "aws_vpc_security_group_ingress_rule" &&
            b.referenced_security_group_id,
        )
        .map(([, , b]) => [b.from_port, b.to_port, b.ip_protocol]);
      assert.equal(
        ports,
        [[22, 22, "tcp"]],
        `${t.name}: workers admit SSH from the runners only`,
      );
    } else assert.is(groups.length, 0);
  }
});

test("no secret in user data or anywhere in the output: only parameter names and placeholders", () => {
  for (const t of trees)
    for (const [file, { contents }] of readTree(t.dir)) {
      assert.not.match(
        contents,
        /-----BEGIN|glrt-[A-Za-z0-9_-]{8,}|PRIVATE KEY/,
        `${t.name}: ${file}`,
      );
      if (file.endsWith("config.toml"))
        assert.match(contents, /^token = "@RUNNER_TOKEN@"$/m);
    }
});

/**
 * The keys of gitlab-runner's configuration structs gen-lab writes, per table (common/config.go
 * at v19.3.0: Config, RunnerConfig with RunnerCredentials and RunnerSettings, DockerConfig,
 * AutoscalerConfig, ConnectorConfig, AutoscalerPolicyConfig, DockerMachine).
 */
const RUNNER_KEYS: Record<string, readonly string[]> = {
  "": [
    "listen_address",
    "session_server",
    "labels",
    "concurrent",
    "check_interval",
    "log_level",
    "log_format",
    "user",
    "runners",
    "sentry_dsn",
    "connection_max_age",
    "machine",
    "experimental",
    "shutdown_timeout",
  ],
  runners: [
    "name",
    "limit",
    "output_limit",
    "request_concurrency",
    "strict_check_interval",
    "unhealthy_requests_limit",
    "unhealthy_interval",
    "job_status_final_update_retry_limit",
    "experimental",
    "url",
    "id",
    "token",
    "token_obtained_at",
    "token_expires_at",
    "tls-ca-file",
    "tls-cert-file",
    "tls-key-file",
    "labels",
    "executor",
    "builds_dir",
    "cache_dir",
    "clone_url",
    "environment",
    "proxy_exec",
    "pre_get_sources_script",
    "post_get_sources_script",
    "pre_build_script",
    "post_build_script",
    "prepare_timeout",
    "get_sources_timeout",
    "debug_trace_disabled",
    "safe_directory_checkout",
    "clean_git_config",
    "shell",
    "custom_build_dir",
    "referees",
    "cache",
    "artifact",
    "feature_flags",
    "monitoring",
    "use_slot_cgroups",
    "slot_cgroup_template",
    "instance",
    "ssh",
    "docker",
    "parallels",
    "virtualbox",
    "machine",
    "kubernetes",
    "custom",
    "autoscaler",
    "step_runner_image",
  ],
  "runners.docker": [
    "host",
    "tls_cert_path",
    "tls_verify",
    "hostname",
    "image",
    "privileged",
    "volumes",
    "pull_policy",
    "allowed_images",
    "network_mode",
    "cap_add",
    "cap_drop",
    "security_opt",
    "shm_size",
    "memory",
    "cpus",
  ],
  "runners.autoscaler": [
    "capacity_per_instance",
    "max_use_count",
    "max_instances",
    "plugin",
    "plugin_config",
    "connector_config",
    "policy",
    "instance_ready_command",
    "instance_acquire_timeout",
    "update_interval",
    "update_interval_when_expecting",
    "deletion_retry_interval",
    "shutdown_deletion_interval",
    "shutdown_deletion_retries",
    "failure_threshold",
    "scale_throttle",
    "reservation_throttling",
    "log_internal_ip",
    "log_external_ip",
    "delete_instances_on_shutdown",
    "vm_isolation",
    "state_storage",
  ],
  // plugin_config is the plugin's own (fleeting-plugin-aws: name, profile, config_file, credentials_file).
  "runners.autoscaler.plugin_config": [
    "name",
    "profile",
    "config_file",
    "credentials_file",
  ],
  "runners.autoscaler.connector_config": [
    "os",
    "arch",
    "protocol",
    "protocol_port",
    "username",
    "password",
    "key_path",
    "use_static_credentials",
    "keepalive",
    "timeout",
    "use_external_addr",
  ],
  "runners.autoscaler.policy": [
    "periods",
    "timezone",
    "idle_count",
    "idle_time",
    "scale_factor",
    "scale_factor_limit",
    "preemptive_mode",
  ],
  "runners.machine": [
    "MaxGrowthRate",
    "IdleCount",
    "IdleScaleFactor",
    "IdleCountMin",
    "IdleTime",
    "MaxBuilds",
    "MachineDriver",
    "MachineName",
    "MachineOptions",
    "MachineOptionsWithName",
    "MaxRemovalAttempts",
    "autoscaling",
  ],
};

/** Every table path and key of a TOML document, as Python's tomllib reads it. */
function tomlKeys(file: string): { data: Json; keys: [string, string][] } {
  const r = spawnSync(
    "python3",
    [
      "-c",
      "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
      file,
    ],
    { encoding: "utf8" },
  );
  assert.is(r.status, 0, `tomllib reads ${file}: ${r.stderr}`);
  const data = JSON.parse(r.stdout) as Json;
  const keys: [string, string][] = [];
  const walk = (value: Json, at: string) => {
    for (const [k, v] of Object.entries(value)) {
      keys.push([at, k]);
      const here = at === "" ? k : `${at}.${k}`;
      const tables = Array.isArray(v)
        ? v.filter((x) => x && typeof x === "object")
        : v && typeof v === "object"
          ? [v]
          : [];
      for (const table of tables)
        if (RUNNER_KEYS[here] || here === "runners.docker")
          walk(table as Json, here);
    }
  };
  walk(data, "");
  return { data, keys };
}

test("config.toml is TOML (Python's tomllib) with only keys gitlab-runner's configuration has, its capacity the workers'", () => {
  for (const t of trees)
    for (const runner of t.lab.runners) {
      const file = path.join(
        t.dir,
        paths.runnerConfig(t.lab, runner).slice(t.lab.name.length + 1),
      );
      const { data, keys } = tomlKeys(file);
      for (const [table, key] of keys)
        assert.ok(
          RUNNER_KEYS[table]?.includes(key),
          `${t.name}: [${table}] ${key} is a gitlab-runner key`,
        );
      const w = t.lab.workers;
      const entry = data.runners[0] as Json;
      assert.is(entry.executor, w.executor);
      assert.is(entry.url, t.lab.pipeline.gitlabUrl);
      if (w.executor === "docker-autoscaler") {
        assert.is(data.concurrent, w.maxInstances * w.capacityPerInstance);
        assert.is(entry.autoscaler.plugin_config.name, runner.names.workers);
        assert.is(entry.autoscaler.connector_config.use_external_addr, false);
      } else {
        assert.is(data.concurrent, w.maxInstances);
        const options = entry.machine.MachineOptions as string[];
        for (const o of [
          `amazonec2-zone=${runner.zone.slice(-1)}`,
          "amazonec2-private-address-only=true",
          `amazonec2-security-group=${t.lab.names.workersSecurityGroup}`,
          "amazonec2-metadata-token=required",
        ])
          assert.ok(options.includes(o), `${t.name}: ${o}`);
      }
    }
});

test.run();
