/**
 * The pipeline side as the real trigger reads it (docs/pipeline.md): the trigger file through
 * PyYAML and the trigger's inheritance rules, down to the variables each trigger sends; the
 * ConfigMap and CronJob against the Kubernetes OpenAPI schemas (kubernetes-models' validate(),
 * and the TypeScript compiler for fields no schema defines) and against what the trigger's
 * documentation requires. For the example lab, every fixture and a few synthetic labs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { load, loadAll } from "js-yaml";
import type { CronJob } from "kubernetes-types/batch/v1.js";
import type { ConfigMap, Container, EnvVar } from "kubernetes-types/core/v1.js";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { generate } from "../src/render/generate.js";
import { parseLab } from "../src/load.js";
import type { LabModel } from "../src/model.js";
import { paths } from "../src/render/paths.js";
import { ROOT, skipped, tempDir, validFixtures } from "./helpers.js";

const FOO = "labs/foo.yaml";
const TLS = "test/fixtures/openvpn-tls-egress.yaml";

const labs: { file: string; text: string }[] = [
  FOO,
  ...validFixtures().map((f) => path.relative(ROOT, f)),
]
  .map((file) => ({
    file,
    text: fs.readFileSync(path.join(ROOT, file), "utf8"),
  }))
  .concat(
    syntheticLabs(4).map((l: { file: string; text: string }) => ({
      file: `synthetic/${l.file}`,
      text: l.text,
    })),
  );

// The lab file as written, read without gen-lab: the oracle the generated files are held to.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Generated {
  readonly file: string;
  readonly raw: Json;
  readonly model: LabModel;
  readonly triggerText: string;
  readonly kubernetesText: string;
  readonly configMap: ConfigMap;
  readonly cronJob: CronJob;
}

const generated: Generated[] = labs.map(({ file, text }) => {
  const model = parseLab(text, file);
  const files = new Map(generate(model).map((f) => [f.path, f.contents]));
  const kubernetesText = files.get(paths.kubernetes(model))!;
  const [configMap, cronJob] = loadAll(kubernetesText) as [ConfigMap, CronJob];
  return {
    file,
    raw: load(text) as Json,
    model,
    triggerText: files.get(paths.pipelineData(model))!,
    kubernetesText,
    configMap,
    cronJob,
  };
});

// ------------------------------------------------------------------ the trigger file

/**
 * The trigger's configuration rules (cki_tools.gitrepo_trigger, "Pipeline configuration YAML"),
 * re-implemented in Python over PyYAML's safe_load, the reader the trigger uses: entries whose
 * name starts with a dot are not triggered; `.default` is inherited by every entry, then the
 * entries `.extends` names (one or a list), then the entry's own options; options whose name
 * starts with a dot are not sent. Prints, per file, each trigger's variables.
 */
const INHERITANCE = `
import json, sys, yaml

def variables(config):
    def resolve(name, seen):
        if name in seen:
            raise ValueError("extends cycle at " + name)
        entry = dict(config[name])
        parents = entry.pop(".extends", [])
        merged = {}
        if name != ".default" and ".default" in config:
            merged.update(resolve(".default", seen | {name}))
        for parent in [parents] if isinstance(parents, str) else parents:
            merged.update(resolve(parent, seen | {name}))
        merged.update(entry)
        return merged
    return {
        name: {k: v for k, v in resolve(name, frozenset()).items() if not k.startswith(".")}
        for name in config
        if not name.startswith(".")
    }

json.dump([variables(yaml.safe_load(text)) for text in json.load(sys.stdin)], sys.stdout)
`;

/** What each trigger of each text sends, by the rules above; undefined without PyYAML. */
function triggerVariables(
  texts: readonly string[],
): Record<string, Record<string, unknown>>[] | undefined {
  const r = spawnSync("python3", ["-c", INHERITANCE], {
    input: JSON.stringify(texts),
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error || /No module named/.test(r.stderr)) return undefined;
  assert.is(r.status, 0, `python3: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, Record<string, unknown>>[];
}

test("the inheritance re-implementation follows the documented rules", () => {
  const text = [
    ".default: { a: '1', b: '1', .hidden: x }",
    ".base: { b: '2', c: '2' }",
    ".other: { c: '3', d: '3' }",
    "one: { .extends: .base, e: '4' }",
    "two: { .extends: [.base, .other], b: '5' }",
  ].join("\n");
  const result = triggerVariables([text]);
  if (!result) return skipped("python3 with PyYAML is not installed");
  assert.equal(result, [
    {
      one: { a: "1", b: "2", c: "2", e: "4" },
      two: { a: "1", b: "5", c: "3", d: "3" },
    },
  ]);
});

/** The variables each trigger of a lab must send, from the lab file as written. */
function expectedVariables(raw: Json): Record<string, Record<string, string>> {
  const p = raw["pipeline"] as Json;
  const parent: string =
    p["parent_project"] ?? p["project"].replace(/\/[^/]*$/, "");
  return Object.fromEntries(
    (p["triggers"] as Json[]).map((t) => [
      t["name"],
      {
        ...t["extra"],
        cki_pipeline_project: p["project"].slice(parent.length + 1),
        runner_tags: (p["runner_tags"] ?? [raw["name"]]).join(","),
        git_url: t["git_url"],
        branch: t["branch"],
        cki_pipeline_branch: t["pipeline_branch"] ?? t["name"],
      },
    ]),
  );
}

test("every trigger sends exactly its variables, all strings, through PyYAML and inheritance", () => {
  const result = triggerVariables(generated.map((g) => g.triggerText));
  if (!result) return skipped("python3 with PyYAML is not installed");
  generated.forEach((g, i) => {
    const sent = result[i]!;
    assert.equal(sent, expectedVariables(g.raw), g.file);
    for (const [trigger, variables] of Object.entries(sent))
      for (const [name, value] of Object.entries(variables))
        assert.type(value, "string", `${g.file}: ${trigger}.${name}`);
  });
});

test("the variables of the example lab and of a lab that sets every pipeline field", () => {
  const result = triggerVariables(generated.map((g) => g.triggerText));
  if (!result) return skipped("python3 with PyYAML is not installed");
  const of = (file: string) =>
    result[generated.findIndex((g) => g.file === file)];
  assert.equal(of(FOO), {
    rhel9: {
      cki_pipeline_project: "cki-foo-pipelines",
      runner_tags: "foo",
      git_url:
        "https://gitlab.com/redhat/centos-stream/src/kernel/centos-stream-9.git",
      branch: "main",
      cki_pipeline_branch: "rhel9",
      architectures: "x86_64 aarch64",
    },
  });
  const common = {
    cki_pipeline_project: "qux/kernel-pipelines",
    runner_tags: "qux,lab-qux",
  };
  assert.equal(of(TLS), {
    rhel10: {
      ...common,
      git_url:
        "https://gitlab.com/redhat/centos-stream/src/kernel/centos-stream-10.git",
      branch: "main",
      cki_pipeline_branch: "rhel10",
      architectures: "x86_64 aarch64 s390x",
      report_rules: "[]",
    },
    "rhel9-rt": {
      ...common,
      git_url:
        "https://gitlab.com/redhat/centos-stream/src/kernel/centos-stream-9.git",
      branch: "main-rt",
      cki_pipeline_branch: "rhel9-rt/main",
    },
  });
});

for (const g of generated) {
  test(`${g.file}: the trigger file: .default holds only what every trigger sends, keys sorted`, () => {
    assert.match(g.triggerText, /^# Generated by gen-lab/);
    const data = load(g.triggerText) as Record<string, Record<string, unknown>>;
    assert.equal(Object.keys(data[".default"]!), [
      "cki_pipeline_project",
      "runner_tags",
    ]);
    assert.equal(Object.keys(data), Object.keys(data).sort());
    for (const entry of Object.values(data))
      assert.equal(Object.keys(entry), Object.keys(entry).sort());
    // The ConfigMap carries the same text, byte for byte.
    assert.equal(Object.values(g.configMap.data!), [g.triggerText]);
  });
}

// ------------------------------------------------------------------ the Kubernetes file

const container = (cj: CronJob): Container =>
  cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!;

/** The variables cki_tools.gitrepo_trigger's documentation marks required. */
const REQUIRED_ENV = [
  "PIPELINE_DEFINITION_URL",
  "GITLAB_PARENT_PROJECT",
  "GITLAB_URL",
  "GITLAB_TOKENS",
  "GITLAB_TOKEN",
];

/** A Kubernetes quantity in base units (cores, bytes), for the forms gen-lab writes. */
function quantity(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(q));
  assert.ok(m, `quantity ${q}`);
  const unit = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[m![2] ?? ""];
  return Number(m![1]) * (unit ?? 1);
}

for (const g of generated) {
  test(`${g.file}: kubernetes: both objects pass kubernetes-models' OpenAPI validation`, async () => {
    assert.is(`${g.configMap.apiVersion} ${g.configMap.kind}`, "v1 ConfigMap");
    assert.is(`${g.cronJob.apiVersion} ${g.cronJob.kind}`, "batch/v1 CronJob");
    // kubernetes-models is ESM only, and uvu loads tests as CommonJS.
    const { ConfigMap } = await import("kubernetes-models/v1/ConfigMap");
    const { CronJob } = await import("kubernetes-models/batch/v1/CronJob");
    new ConfigMap(g.configMap as never).validate();
    new CronJob(g.cronJob as never).validate();
  });

  test(`${g.file}: kubernetes: the environment the trigger's documentation requires`, () => {
    const p = g.raw["pipeline"] as Json;
    const c = container(g.cronJob);
    const env = new Map<string, EnvVar>();
    for (const e of c.env!) {
      assert.not.ok(env.has(e.name), `${e.name} is set once`);
      env.set(e.name, e);
    }
    for (const name of REQUIRED_ENV) {
      const e = env.get(name);
      assert.ok(e && (e.value || e.valueFrom), `${name} is set`);
    }
    const value = (name: string) => env.get(name)!.value!;
    assert.is(
      value("PIPELINE_DEFINITION_URL"),
      p["definition_url"] ??
        "https://gitlab.com/cki-project/pipeline-definition",
    );
    assert.is(value("GITLAB_URL"), p["gitlab_url"] ?? "https://gitlab.com");
    // The right project: the parent group and the trigger's project name make pipeline.project,
    // where the lab's runners are registered.
    const sent = load(g.triggerText) as Record<string, Record<string, string>>;
    assert.is(
      `${value("GITLAB_PARENT_PROJECT")}/${sent[".default"]!["cki_pipeline_project"]}`,
      p["project"],
    );
    if (p["parent_project"])
      assert.is(value("GITLAB_PARENT_PROJECT"), p["parent_project"]);
    // The token: from a Secret, named by GITLAB_TOKENS under the GitLab host; never a literal.
    const token = env.get("GITLAB_TOKEN")!;
    assert.is(token.value, undefined, "no literal token");
    assert.equal(token.valueFrom, {
      secretKeyRef: {
        name:
          p["token_secret"] ??
          `${g.raw["prefix"] ?? "arr-cki"}-${g.raw["environment"] ?? "prod"}-${g.raw["name"]}-gitlab-token`,
        key: "token",
      },
    });
    const tokens = JSON.parse(value("GITLAB_TOKENS")) as Record<string, string>;
    assert.equal(tokens, {
      [new URL(value("GITLAB_URL")).hostname]: "GITLAB_TOKEN",
    });
    assert.not.match(g.kubernetesText, /glpat-|token:\s*[A-Za-z0-9_-]{20,}/);
    // One channel for the configuration: the mounted file.
    assert.not.ok(env.has("GITREPO_TRIGGER_CONFIG"));
    assert.is(
      value("CKI_DEPLOYMENT_ENVIRONMENT"),
      p["deployment_environment"] ?? "production",
    );
    assert.ok(
      ["production", "staging"].includes(value("CKI_DEPLOYMENT_ENVIRONMENT")),
    );
    assert.is(c.image, p["image"] ?? "quay.io/cki/cki-tools:production");
    assert.equal(c.command, ["python3", "-m", "cki_tools.gitrepo_trigger"]);
  });

  test(`${g.file}: kubernetes: the configuration mounted read-only, writable scratch only`, () => {
    const pod = g.cronJob.spec!.jobTemplate.spec!.template.spec!;
    const c = container(g.cronJob);
    const env = new Map(c.env!.map((e) => [e.name, e.value]));
    const volume = pod.volumes!.find(
      (v) => v.configMap?.name === g.configMap.metadata!.name,
    )!;
    const mount = c.volumeMounts!.find((m) => m.name === volume.name)!;
    assert.is(mount.readOnly, true);
    assert.is(
      env.get("GITREPO_TRIGGER_CONFIG_PATH"),
      `${mount.mountPath}/${Object.keys(g.configMap.data!)[0]!}`,
    );
    // With a read-only root, HOME and /tmp are writable only as emptyDir mounts.
    for (const dir of [env.get("HOME")!, "/tmp"]) {
      const m = c.volumeMounts!.find((x) => x.mountPath === dir);
      assert.ok(m && !m.readOnly, `${dir} is a writable mount`);
      assert.ok(
        pod.volumes!.find((v) => v.name === m!.name)?.emptyDir,
        `${dir} is an emptyDir`,
      );
    }
  });

  test(`${g.file}: kubernetes: schedule policy, limits, a non-root read-only container`, () => {
    const spec = g.cronJob.spec!;
    assert.is(spec.schedule, (g.raw["pipeline"] as Json)["schedule"]);
    assert.is(spec.concurrencyPolicy, "Forbid");
    // Shorter than the shortest schedule validation admits (5 minutes).
    assert.ok(
      spec.startingDeadlineSeconds! > 0 && spec.startingDeadlineSeconds! < 300,
    );
    assert.ok(spec.successfulJobsHistoryLimit! >= 1);
    assert.ok(spec.failedJobsHistoryLimit! >= 1);
    const pod = spec.jobTemplate.spec!.template.spec!;
    assert.is(pod.containers.length, 1);
    const c = container(g.cronJob);
    for (const r of ["cpu", "memory"]) {
      const request = c.resources!.requests![r]!;
      const limit = c.resources!.limits![r]!;
      assert.ok(
        quantity(request) <= quantity(limit),
        `${r}: ${request} <= ${limit}`,
      );
    }
    assert.is(pod.securityContext!.runAsNonRoot, true);
    assert.ok(Number.isInteger(pod.securityContext!.runAsUser));
    assert.ok(pod.securityContext!.runAsUser! > 0);
    assert.equal(pod.securityContext!.seccompProfile, {
      type: "RuntimeDefault",
    });
    assert.is(pod.automountServiceAccountToken, false);
    assert.equal(c.securityContext, {
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
  });

  test(`${g.file}: kubernetes: app.kubernetes.io labels on every object and template, valid names`, () => {
    const spec = g.cronJob.spec!;
    const all = [
      g.configMap.metadata!.labels!,
      g.cronJob.metadata!.labels!,
      spec.jobTemplate.metadata!.labels!,
      spec.jobTemplate.spec!.template.metadata!.labels!,
    ];
    assert.equal(Object.keys(all[0]!).sort(), [
      "app.kubernetes.io/component",
      "app.kubernetes.io/instance",
      "app.kubernetes.io/managed-by",
      "app.kubernetes.io/name",
      "app.kubernetes.io/part-of",
    ]);
    for (const labels of all) {
      assert.equal(labels, all[0]);
      for (const v of Object.values(labels))
        assert.match(
          v,
          /^(?=.{1,63}$)[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/,
        );
    }
    assert.is(all[0]!["app.kubernetes.io/instance"], g.cronJob.metadata!.name);
    for (const name of [
      g.configMap.metadata!.name!,
      g.cronJob.metadata!.name!,
    ]) {
      assert.ok(name.length <= 52, name);
      assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });
}

/**
 * kubernetes-models' validate() lets fields its schema does not define through. The compiler
 * does not: each generated object, written as an object literal typed with kubernetes-types
 * and with kubernetes-models' own interfaces (both generated from the Kubernetes OpenAPI
 * schemas), fails `tsc --strict` on any field the schema lacks (excess property checks).
 */
function typeErrors(files: Record<string, string>): string[] {
  const { dir, cleanup } = tempDir("gen-lab-k8s-types-");
  try {
    fs.symlinkSync(
      path.join(ROOT, "node_modules"),
      path.join(dir, "node_modules"),
    );
    fs.writeFileSync(path.join(dir, "package.json"), '{ "type": "module" }\n');
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          types: [],
        },
        files: Object.keys(files),
      }),
    );
    for (const [name, text] of Object.entries(files))
      fs.writeFileSync(path.join(dir, name), text);
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "."],
      { cwd: dir, encoding: "utf8", timeout: 60_000 },
    );
    assert.not.ok(r.error, `tsc hung or failed to start: ${r.error}`);
    return r.stdout.split("\n").filter((l) => /error TS\d+/.test(l));
  } finally {
    cleanup();
  }
}

const TYPE_IMPORTS = [
  'import type { CronJob } from "kubernetes-types/batch/v1.js";',
  'import type { ConfigMap } from "kubernetes-types/core/v1.js";',
  'import type { ICronJob } from "kubernetes-models/batch/v1/CronJob";',
  'import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";',
].join("\n");

/** Each object as a literal of both type families. */
function typedLiterals(
  prefix: string,
  configMap: unknown,
  cronJob: unknown,
): string {
  const cm = JSON.stringify(configMap);
  const cj = JSON.stringify(cronJob);
  return [
    `export const ${prefix}_cm: ConfigMap = ${cm};`,
    `export const ${prefix}_cm_models: IConfigMap = ${cm};`,
    `export const ${prefix}_cj: CronJob = ${cj};`,
    `export const ${prefix}_cj_models: ICronJob = ${cj};`,
  ].join("\n");
}

test("kubernetes: no field the Kubernetes schemas do not define (tsc --strict), and the check bites", () => {
  const good = generated
    .map((g, i) => typedLiterals(`lab${i}`, g.configMap, g.cronJob))
    .join("\n");
  // The example lab with a misspelt field in the container's security context and an unknown
  // one in the ConfigMap: each type family must refuse both.
  const foo = generated.find((g) => g.file === FOO)!;
  const bogus = structuredClone(foo.cronJob) as Json;
  const c = bogus["spec"].jobTemplate.spec.template.spec.containers[0];
  c.securityContext.readOnlyRootFileSystem = true;
  const bogusMap = { ...foo.configMap, immutible: true };
  const errors = typeErrors({
    "generated.ts": `${TYPE_IMPORTS}\n${good}\n`,
    "bogus.ts": `${TYPE_IMPORTS}\n${typedLiterals("bogus", bogusMap, bogus)}\n`,
  });
  assert.equal(
    errors.filter((e) => !e.startsWith("bogus.ts")),
    [],
    "the generated objects use only fields the schemas define",
  );
  for (const field of ["readOnlyRootFileSystem", "immutible"])
    assert.is(
      errors.filter((e) => e.startsWith("bogus.ts") && e.includes(`"${field}"`))
        .length,
      2,
      `both type families refuse ${field}: ${errors.join("\n")}`,
    );
});

test.run();
