import { dump } from "js-yaml";
import { codePointOrder } from "../file.js";

/**
 * Every YAML file gen-lab writes goes through here, so all share one style: js-yaml's default
 * schema, whose compatibility mode quotes what a YAML 1.1 reader (PyYAML in the trigger and
 * cloud-init, go-yaml in Kubernetes) would read as another type (`yes`, `0644`); no anchors;
 * no line folding (URLs and commands stay on one line).
 *
 * `sorted`: keys by code point, never by locale. `quoted`: every string value double-quoted,
 * for files that carry users' free text: YAML 1.1 reads `1_000` as a number, and js-yaml's
 * compatibility mode does not know that form.
 */
export function toYaml(
  value: unknown,
  { sorted = false, quoted = false } = {},
): string {
  return dump(value, {
    noRefs: true,
    lineWidth: -1,
    quotingType: '"',
    forceQuotes: quoted,
    ...(sorted ? { sortKeys: codePointOrder } : {}),
  });
}
