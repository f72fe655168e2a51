import { dump } from "js-yaml";

/**
 * Every YAML file gen-lab writes goes through here, so all of them share one style:
 * keys sorted (stable diffs), no anchors/aliases (each consumer reads plain YAML),
 * no line folding (long URLs and commands stay on one line), and quoting only where
 * YAML needs it.
 */
export function toYaml(value: unknown): string {
  return dump(value, {
    sortKeys: true,
    noRefs: true,
    lineWidth: -1,
    quoteStyle: "double",
  });
}

/** Like toYaml, but keys keep the order they were built in (for documents whose order carries meaning). */
export function toYamlOrdered(value: unknown): string {
  return dump(value, {
    sortKeys: false,
    noRefs: true,
    lineWidth: -1,
    quoteStyle: "double",
  });
}
