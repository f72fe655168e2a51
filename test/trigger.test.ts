/**
 * The trigger file as the real trigger reads it (docs/pipeline.md): through PyYAML and the
 * trigger's inheritance rules, down to the variables each trigger sends. For the example lab,
 * every fixture and a few synthetic labs.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { load, loadAll } from "js-yaml";
import type { CronJob } from "kubernetes-types/batch/v1.js";
import type { ConfigMap } from "kubernetes-types/core/v1.js";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { generate } from "../src/generate.js";
import { parseLab } from "../src/load.js";
import type { LabModel } from "../src/model.js";
import { paths } from "../src/render/paths.js";
import { ROOT, skipped, validFixtures } from "./helpers.js";

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

test.run();
