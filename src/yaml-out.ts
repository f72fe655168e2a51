import { DEFAULT_SCHEMA, dump, Type, type DumpOptions } from "js-yaml";
import { codePointOrder } from "./file.js";

/**
 * Every YAML file gen-lab writes goes through here, so all of them share one style:
 * no anchors/aliases (each consumer reads plain YAML), no line folding (long URLs and
 * commands stay on one line), and quoting only where YAML needs it. js-yaml's default
 * schema and compat mode quote what a YAML 1.1 reader (gitrepo-trigger's and cloud-init's
 * PyYAML, Kubernetes' go-yaml) would take for another type: `yes`, `on`, `0644`, `1:20`.
 */

/**
 * YAML 1.1's integers and floats (the YAML 1.1 type repository's forms, as PyYAML resolves
 * them): unlike YAML 1.2 they allow `_` between digits, so `1_000` and `0x_1F` are numbers
 * there. js-yaml's schema does not know these forms and would write such strings unquoted. A
 * string a schema type resolves is never written plain, so this type, which only resolves
 * and never represents a value (no predicate), makes them quoted.
 */
const YAML11_NUMBER =
  /^(?:[-+]?0b[01_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

const SCHEMA = DEFAULT_SCHEMA.extend({
  implicit: [
    new Type("tag:gen-lab,2026:yaml-1.1-number", {
      kind: "scalar",
      resolve: (text: string) => YAML11_NUMBER.test(text),
      construct: (text: string) => text,
    }),
  ],
});

const ORDERED: DumpOptions = Object.freeze({
  schema: SCHEMA,
  noRefs: true,
  lineWidth: -1,
  quotingType: '"',
});
const SORTED: DumpOptions = Object.freeze({
  ...ORDERED,
  sortKeys: codePointOrder,
});

/** Keys sorted, never by locale (stable diffs whatever order the data was built in). */
export function toYaml(value: unknown): string {
  return dump(value, SORTED);
}

/** Like toYaml, but keys keep the order they were built in (for documents whose order carries meaning). */
export function toYamlOrdered(value: unknown): string {
  return dump(value, ORDERED);
}

/** Several documents in one stream, each but the first after a `---` line; keys in built order. */
export function toYamlStream(values: readonly unknown[]): string {
  return values.map(toYamlOrdered).join("---\n");
}
