/**
 * Build step after `tsc`: schema/lab.schema.json, the JSON Schema of the lab file, from the
 * zod schema (dist/schema.js) and the field descriptions in schema/fields.yaml. Editors that
 * run yaml-language-server check and complete lab files with it (docs/lab-file.md).
 *
 * zod writes types, patterns, allowed values and defaults; refinements it cannot express (CIDRs,
 * URLs, host names, cross-field rules) are left out, so the JSON Schema accepts more than
 * gen-lab, never less (test/schema.test.ts). Draft-07: every yaml-language-server and JSON
 * Schema validator in use reads it, and zod's output for it is the same as for 2020-12.
 *
 * Fails, naming them, when a field of the schema has no description or a description names no
 * field: a field added to src/schema.ts cannot go undocumented, nor a renamed one keep a stale
 * description.
 *
 * Usage: node scripts/build-schema.mjs   (npm run build runs it)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parse } from "yaml";
import * as z from "zod";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SCHEMA_FILE = path.join(ROOT, "schema", "lab.schema.json");
export const FIELDS_FILE = path.join(ROOT, "schema", "fields.yaml");

/**
 * The JSON Schema of `labSchema` (zod) as the text of schema/lab.schema.json, with the
 * descriptions of `fieldsText` (schema/fields.yaml) attached by YAML path.
 */
export function labSchemaText(labSchema, fieldsText) {
  const fields = parse(fieldsText);
  const problems = [];
  for (const [at, text] of Object.entries(fields ?? {}))
    if (typeof text !== "string" || text.trim() === "")
      problems.push(`${at}: the description must be text`);
  const unused = new Set(Object.keys(fields ?? {}));

  // `role`: a named field needs a description, a list entry or mapping value may have one,
  // a variant of a union (vpn's tunnel types) has its field's.
  const describe = (node, at, role) => {
    const out = {};
    if (role !== "variant") {
      const text = fields?.[at];
      if (text !== undefined) {
        out.description = text;
        unused.delete(at);
      } else if (role === "field") problems.push(`${at}: no description`);
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === "properties")
        out.properties = Object.fromEntries(
          Object.entries(value).map(([name, field]) => [
            name,
            describe(field, at === "" ? name : `${at}.${name}`, "field"),
          ]),
        );
      else if (key === "items") out.items = describe(value, `${at}[]`, "entry");
      else if (key === "additionalProperties" && typeof value === "object")
        out.additionalProperties = describe(value, `${at}.*`, "entry");
      else if (key === "oneOf" || key === "anyOf")
        out[key] = value.map((variant) => describe(variant, at, "variant"));
      else out[key] = value;
    }
    return out;
  };

  const { $schema, ...generated } = z.toJSONSchema(labSchema, {
    io: "input",
    target: "draft-07",
  });
  const schema = {
    $schema,
    $id: "urn:gen-lab:lab-file:1",
    title: "gen-lab lab file, version 1",
    description:
      "One external lab: its intranet, VPN, AWS side, runners and pipelines. gen-lab turns it into NetworkManager, Terraform, cloud-init and Kubernetes files.",
    ...describe(generated, "", "root"),
  };
  for (const at of unused)
    problems.push(`${at}: names no field of the lab file`);
  if (problems.length > 0)
    throw new Error(
      `${path.relative(ROOT, FIELDS_FILE)} does not match src/schema.ts:\n  ${problems.join("\n  ")}`,
    );
  return `${JSON.stringify(schema, null, 2)}\n`;
}

// No top-level await: the tests import this file through tsx, which makes CommonJS of it.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  import(pathToFileURL(path.join(ROOT, "dist", "schema.js")).href)
    .then(({ LabSchema }) => {
      const fields = fs.readFileSync(FIELDS_FILE, "utf8");
      fs.writeFileSync(SCHEMA_FILE, labSchemaText(LabSchema, fields));
    })
    .catch((e) => {
      process.stderr.write(`build-schema: ${e.message}\n`);
      process.exit(1);
    });
}
