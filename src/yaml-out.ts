import { dump } from "js-yaml";

/**
 * Every YAML file gen-lab writes goes through here, so all of them share one style:
 * keys sorted (stable diffs), no anchors/aliases (each consumer reads plain YAML),
 * no line folding (long URLs and commands stay on one line), and quoting only where
 * YAML needs it.
 */
export function toYaml(value: unknown): string {
  return dump(value, SORTED);
}

/** Like toYaml, but keys keep the order they were built in (for documents whose order carries meaning). */
export function toYamlOrdered(value: unknown): string {
  return dump(value, ORDERED);
}

const ORDERED = Object.freeze({
  sortKeys: false,
  noRefs: true,
  lineWidth: -1,
  quoteStyle: "double",
} as const);
const SORTED = Object.freeze({ ...ORDERED, sortKeys: true } as const);
