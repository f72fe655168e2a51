/**
 * schema/lab.schema.json, the JSON Schema editors check lab files with: it is what the build
 * makes of src/schema.ts and schema/fields.yaml, it carries zod's defaults and allowed values,
 * the package exports it, and it accepts every lab gen-lab accepts (it may accept more: the
 * rules zod cannot express stay in gen-lab, never less).
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { Ajv } from "ajv";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkLabs } from "../src/index.js";
import { parseLabText } from "../src/parse.js";
import { LAB_MODELINE, LabSchema } from "../src/schema.js";
import {
  FIELDS_FILE,
  labSchemaText,
  SCHEMA_FILE,
} from "../scripts/build-schema.mjs";
import {
  buildLab,
  syntheticLabs,
  VPN_KINDS,
} from "../scripts/synthetic-labs.mjs";
import { stringify } from "yaml";
import { ROOT, tempDir, validFixtures } from "./helpers.js";

const FOO = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");
const FIELDS = fs.readFileSync(FIELDS_FILE, "utf8");
const COMMITTED = fs.readFileSync(SCHEMA_FILE, "utf8");
const schema = JSON.parse(COMMITTED);
const validate = new Ajv({ allErrors: true }).compile(schema);

test("schema/lab.schema.json is what `npm run build` makes of src/schema.ts and schema/fields.yaml", () => {
  assert.fixture(COMMITTED, labSchemaText(LabSchema, FIELDS));
});

test("a field without a description, or a description of no field, fails the build, named", () => {
  const without = FIELDS.replace(/^workers\.image: .*\n/m, "");
  assert.not.equal(without, FIELDS);
  assert.throws(
    () => labSchemaText(LabSchema, without),
    /workers\.image: no description/,
  );
  const stale = `${FIELDS}runners[].vpn.remot: The lab's port.\n`;
  assert.throws(
    () => labSchemaText(LabSchema, stale),
    /runners\[\]\.vpn\.remot: names no field/,
  );
});

test("the schema names its draft, id and title, and carries zod's defaults and allowed values", () => {
  assert.is(schema.$schema, "http://json-schema.org/draft-07/schema#");
  assert.type(schema.$id, "string");
  assert.type(schema.title, "string");
  const p = schema.properties;
  assert.is(p.environment.default, "prod");
  assert.is(p.prefix.default, "arr-cki");
  assert.equal(
    p.vpn.oneOf.map((v: any) => v.properties.type.const),
    ["openvpn", "wireguard", "ipsec"],
  );
  assert.equal(p.vpn.oneOf[0].properties.auth.enum, ["static-key", "tls"]);
  assert.is(p.vpn.oneOf[0].properties.protocol.default, "udp");
  assert.is(p.vpn.oneOf[1].properties.endpoint_port.default, 51820);
  const w = p.workers.properties;
  assert.equal(w.executor.enum, ["docker-autoscaler", "docker+machine"]);
  assert.is(w.executor.default, "docker-autoscaler");
  assert.is(w.max_instances.default, 10);
  assert.is(p.egress.items.properties.protocol.default, "tcp");
  // Unknown keys are errors in gen-lab: the schema says so too, down to the tunnel types.
  assert.is(schema.additionalProperties, false);
  assert.is(p.vpn.oneOf[2].additionalProperties, false);
  assert.is(p.runners.items.properties.vpn.additionalProperties, false);
  assert.match(
    p.runners.items.properties.vpn.properties.port.description,
    /listening port/,
  );
});

test("labs/foo.yaml starts with LAB_MODELINE, and its path leads to the schema", () => {
  assert.is(FOO.split("\n")[0], LAB_MODELINE);
  const rel = LAB_MODELINE.replace(/^.*\$schema=/, "");
  assert.is(path.resolve(ROOT, "labs", rel), SCHEMA_FILE);
});

test('the package exports the schema as "gen-lab/lab.schema.json"', () => {
  const { dir, cleanup } = tempDir("gen-lab-schema-");
  try {
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(ROOT, path.join(dir, "node_modules", "gen-lab"), "dir");
    const resolved = createRequire(path.join(dir, "x.js")).resolve(
      "gen-lab/lab.schema.json",
    );
    assert.is(fs.realpathSync(resolved), SCHEMA_FILE);
    // The modeline docs/lab-file.md gives for a lab file in such a project's labs/.
    const modeline = "../node_modules/gen-lab/schema/lab.schema.json";
    assert.is(
      fs.realpathSync(path.resolve(dir, "labs", modeline)),
      SCHEMA_FILE,
    );
  } finally {
    cleanup();
  }
});

/** The lab's data as gen-lab reads it, after checking that gen-lab accepts the lab. */
function accepted(file: string, text: string): unknown {
  const errors = checkLabs([{ file, text }]).diagnostics.filter(
    (d) => d.severity === "error",
  );
  assert.equal(errors, [], `gen-lab accepts ${file}`);
  return parseLabText(file, text).source!.data;
}

function assertValid(file: string, text: string) {
  const data = accepted(file, text);
  assert.ok(
    validate(data),
    `${file} against the schema: ${JSON.stringify(validate.errors, null, 1)}`,
  );
}

test("every lab gen-lab accepts in this repository validates against the schema", () => {
  const files = [
    path.join(ROOT, "labs", "foo.yaml"),
    ...validFixtures(),
    ...fs
      .readdirSync(path.join(ROOT, "test", "e2e"))
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => path.join(ROOT, "test", "e2e", f)),
  ];
  assert.ok(files.length >= 10, `${files.length} lab files`);
  for (const f of files)
    assertValid(path.relative(ROOT, f), fs.readFileSync(f, "utf8"));
});

test("every synthetic lab, of every tunnel kind and option, validates against the schema", () => {
  for (const lab of syntheticLabs(24)) assertValid(lab.file, lab.text);
  for (const vpn of VPN_KINDS)
    for (const egress of [false, true]) {
      const lab = buildLab({
        vpn,
        egress,
        zones: 3,
        port: 4000,
        keyDirection: 0,
        cipher: "AES-256-CBC",
        protocol: "tcp",
        interfaceName: "ens5",
      });
      assertValid(`${vpn}.yaml`, stringify(lab));
    }
});

test("the example lab with every optional field gen-lab adds validates against the schema", () => {
  const text = FOO.replace(
    "    vpn:                         # this runner's own credential and tunnel\n",
    "    interface: eth0\n    ssm_parameters: { static_key: /arr-cki/prod/foo/foo-1/static_key }\n$&",
  )
    .replace(
      "ports: [22] }",
      "ports: [22], protocol: tcp }\n  - { to: 10.20.0.53/32, ports: [123], protocol: udp }",
    )
    .replace(
      "pipeline:\n",
      [
        "workers:",
        "  executor: docker-autoscaler",
        "  ami: ami-0123456789abcdef1",
        "  instance_type: t3.xlarge",
        "  max_instances: 4",
        "  capacity_per_instance: 2",
        "  max_use_count: 0",
        "  idle_count: 1",
        "  idle_time: 1h30m",
        "  ssh_user: fedora",
        "  image: quay.io/fedora/fedora:42",
        "  root_device_name: /dev/sda1",
        "  root_volume_size: 100",
        "  gitlab_runner_version: 19.3.0",
        "",
        "pipeline:",
        "  parent_project: redhat/red-hat-ci-tools",
        "  definition_url: https://gitlab.com/cki-project/pipeline-definition",
        "  deployment_environment: staging",
        "  token_secret: foo-gitlab-token",
        "",
      ].join("\n"),
    )
    .replace("      branch: main\n", "$&      pipeline_branch: rhel9-main\n");
  assert.ok(text.includes("workers:") && text.includes("pipeline_branch:"));
  assert.ok(text.includes("ssm_parameters:") && text.includes("protocol: udp"));
  assertValid("every-field.yaml", text);
});

test("the schema rejects a wrong type, an unknown key and a missing field, as gen-lab does", () => {
  const data = accepted("labs/foo.yaml", FOO) as Record<string, any>;
  const cases: [string, (lab: Record<string, any>) => void][] = [
    ["a port as a string", (l) => (l.runners[0].vpn.port = "1194")],
    ["an unknown vpn key", (l) => (l.vpn.remot = "x")],
    ["an unknown top-level key", (l) => (l.wrokers = {})],
    ["no pipeline", (l) => delete l.pipeline],
    ["an unknown tunnel type", (l) => (l.vpn.type = "pptp")],
  ];
  for (const [what, change] of cases) {
    const lab = structuredClone(data);
    change(lab);
    assert.not.ok(validate(lab), what);
  }
});

test.run();
