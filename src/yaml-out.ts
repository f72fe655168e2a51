import * as jsyaml from "js-yaml";
import { dump, Schema, Type, type DumpOptions } from "js-yaml";
import { codePointOrder } from "./file.js";

/**
 * Every YAML file gen-lab writes goes through here, so all of them share one style:
 * no anchors/aliases (each consumer reads plain YAML), no line folding (long URLs and
 * commands stay on one line), and quoting only where YAML needs it. Strings that a YAML 1.1
 * reader (gitrepo-trigger's and cloud-init's PyYAML), a YAML 1.2 one or Kubernetes' go-yaml
 * would take for another type are quoted: `yes`, `on`, `~`, `0644`, `1:20`, `1_000`, `0_x1`, dates.
 */

/**
 * YAML 1.1's integers and floats (the YAML 1.1 type repository's forms, as PyYAML resolves
 * them): unlike YAML 1.2 they allow `_` between digits, so `1_000` and `0x_1F` are numbers
 * there. js-yaml's own types do not know these forms.
 */
const YAML11_NUMBER =
  /^(?:[-+]?0b[01_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** js-yaml's YAML 1.1 compatibility forms (its dumper's DEPRECATED_BOOLEANS_SYNTAX and base-60 numbers). */
const YAML11_BOOLEAN = new Set(
  "y Y yes Yes YES on On ON n N no No NO off Off OFF".split(" "),
);
const YAML11_BASE60 = /^[-+]?[0-9_]+(?::[0-9_]+)+(?:\.[0-9_]*)?$/;

/**
 * The one YAML 1.2 core float form js-yaml's own float type misses: a sign before a leading
 * dot (`+.5`, `-.5e3`). YAML 1.2 readers (Kubernetes' go-yaml, the yaml package) read a number.
 */
const YAML12_SIGNED_DOT_FLOAT = /^[-+]\.[0-9]+(?:[eE][-+]?[0-9]+)?$/;

/**
 * What go-yaml v2 (Kubernetes reads manifests through sigs.k8s.io/yaml, which uses it) takes
 * for a number or a date where YAML 1.1 and 1.2 readers see a string: a plain scalar starting
 * with a digit or a sign is a number if it is one once every `_` is removed, in Go's syntax
 * (`0x`/`0X`, `0o`/`0O`, `0b`/`0B`) or as a YAML float (`0_x1` is 1, `1e_5` is 100000); and a
 * date may have a one-digit month and day (`2026-1-2`).
 */
const GO_YAML_INT =
  /^[-+]?(?:0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|[0-9]+)$/;
const GO_YAML_FLOAT =
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const GO_YAML_DATE = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:$|[Tt ])/;

function goYamlNotString(text: string): boolean {
  if (!/^[-+0-9]/.test(text)) return false;
  const plain = text.replace(/_/g, "");
  return (
    GO_YAML_INT.test(plain) ||
    GO_YAML_FLOAT.test(plain) ||
    GO_YAML_DATE.test(text)
  );
}

/** js-yaml's built-in types (exported at run time; the type declarations omit them). */
const BUILTIN = (jsyaml as unknown as { types: Record<string, Type> }).types;

/** js-yaml's default schema's resolvers: null, bool, int, float, timestamp and merge. */
const RESOLVERS = ["null", "bool", "int", "float", "timestamp", "merge"].map(
  (name) => BUILTIN[name]!,
);

/**
 * Every string any of the forms above resolves starts with one of these characters (or is
 * empty): `~`, null/bool/compat letters, the merge key's `<`, a sign, a dot, `_` or a digit.
 */
const MAY_RESOLVE = /^(?:$|[~nNtTfFyYoO<+\-._0-9])/;

/**
 * The dump schema. js-yaml tries, for every string it could write plain, each implicit type
 * of the schema, and for every value each type's predicate; with its default schema (seven
 * resolvers, four explicit types) and compat mode that was a large share of writing a
 * document. Here one type answers "would a reader take this for something else" with the same
 * resolvers, behind a one-character test that most strings fail; null, booleans and numbers
 * are written by js-yaml's own types; there are no explicit types (gen-lab writes no binary,
 * sets or ordered maps). test/yaml-out.test.ts checks the output equals the default schema's.
 */
const NOT_A_STRING = new Type("tag:gen-lab,2026:not-a-string", {
  kind: "scalar",
  resolve: (text: string) =>
    MAY_RESOLVE.test(text) &&
    (YAML11_BOOLEAN.has(text) ||
      YAML11_BASE60.test(text) ||
      YAML12_SIGNED_DOT_FLOAT.test(text) ||
      YAML11_NUMBER.test(text) ||
      goYamlNotString(text) ||
      RESOLVERS.some((t) => t.resolve(text))),
});

/**
 * A built-in type that writes its values but resolves nothing (NOT_A_STRING does that). js-yaml
 * asks every type's predicate about every value and key it writes, and its own predicates call
 * Object.prototype.toString; these say the same of the primitives gen-lab writes (it builds
 * no Number or Boolean objects) with one typeof.
 */
function writer(name: string, predicate: (value: unknown) => boolean): Type {
  const t = BUILTIN[name]! as Type & { readonly tag: string };
  return new Type(t.tag, {
    kind: "scalar",
    resolve: () => false,
    predicate,
    represent: t.represent ?? undefined,
    defaultStyle: t.defaultStyle ?? undefined,
  });
}

/**
 * Strings js-yaml would write plain whatever their place (block or flow, key or value), as
 * a regular expression: a first character that starts no YAML indicator, no line break,
 * quote, `#`, flow indicator or `: ` inside, and neither a space nor a colon last. Only the
 * check for another type's form (NOT_A_STRING) remains.
 */
const ALWAYS_PLAIN =
  /^[A-Za-z0-9_./](?:(?:[A-Za-z0-9_./@%+=~ -]|:(?! ))*[A-Za-z0-9_./@%+=~-])?$/;

/**
 * The strings of ALWAYS_PLAIN that no reader takes for another type, written as they are.
 * js-yaml otherwise picks a string's style in a JavaScript loop over its characters (with
 * the YAML-1.1 forms, a quarter of writing a document, more on a process's first documents);
 * a type whose predicate matches hands js-yaml the text to write, and every other string takes
 * js-yaml's own path. test/yaml-out.test.ts checks the output is the same.
 */
const PLAIN_STRING = new Type("tag:gen-lab,2026:plain-string", {
  kind: "scalar",
  resolve: () => false,
  predicate: (value: unknown) =>
    typeof value === "string" &&
    ALWAYS_PLAIN.test(value) &&
    !NOT_A_STRING.resolve(value),
  represent: (value: object) => value as unknown as string,
});

/** js-yaml's split of numbers: integers, and everything else (fractions, -0, NaN, infinities). */
const isInteger = (v: unknown): boolean =>
  typeof v === "number" && v % 1 === 0 && !Object.is(v, -0);

const SCHEMA = new Schema({
  implicit: [
    PLAIN_STRING,
    NOT_A_STRING,
    writer("null", (v) => v === null),
    writer("bool", (v) => typeof v === "boolean"),
    writer("int", isInteger),
    writer("float", (v) => typeof v === "number" && !isInteger(v)),
  ],
  explicit: [],
});

const ORDERED: DumpOptions = Object.freeze({
  schema: SCHEMA,
  // Compat mode's forms are in NOT_A_STRING.
  noCompatMode: true,
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
