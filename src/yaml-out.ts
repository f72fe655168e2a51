import { dump, type DumpOptions } from "js-yaml";
import { codePointOrder } from "./file.js";

/**
 * Every YAML file gen-lab writes goes through here, so all of them share one style:
 * no anchors/aliases (each consumer reads plain YAML), no line folding (long URLs and
 * commands stay on one line), and quoting only where YAML needs it. js-yaml's default
 * schema and compat mode also quote what a YAML 1.1 reader (cloud-init's PyYAML,
 * Kubernetes' go-yaml) would take for another type: `yes`, `on`, `0644`, `1:20`.
 */
const ORDERED: DumpOptions = Object.freeze({
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
