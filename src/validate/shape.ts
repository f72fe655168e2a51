import { distance } from "fastest-levenshtein";
import type { z } from "zod";
import type { Diagnostic } from "../diagnostics.js";
import type { LabSource, YamlPath } from "../parse.js";
import { HINT, LabSchema, VPN_TYPES, type LabInput } from "../schema.js";
import { formatPath, Reporter } from "./report.js";

/** Key material, in a value or a comment: a lab names key files, it never holds one. */
const PEM_RE = /-----BEGIN|PRIVATE KEY-----/;

/**
 * The document's shape: zod's verdict as located diagnostics, and key material anywhere in the
 * text. The lab input only when nothing was found.
 */
export function checkShape(source: LabSource): {
  input?: LabInput;
  diagnostics: Diagnostic[];
} {
  const r = new Reporter(source);
  checkNoSecrets(r, source);
  const parsed = LabSchema.safeParse(source.data);
  if (!parsed.success)
    for (const issue of parsed.error.issues) reportIssue(r, issue);
  return {
    input: parsed.success && !r.failed ? parsed.data : undefined,
    diagnostics: r.list,
  };
}

/** Key material in values (at their path) and anywhere else in the text, comments included (at their line). */
function checkNoSecrets(r: Reporter, source: LabSource): void {
  if (!PEM_RE.test(source.text)) return;
  const hint =
    "never put key material in a lab file, not even in a comment: give the path of the file on the runner";
  const lines = new Set<number>();
  const walk = (value: unknown, path: YamlPath) => {
    if (typeof value === "string" && PEM_RE.test(value)) {
      r.error(path, "contains key or certificate material", hint);
      lines.add(source.locate(path).line);
    } else if (value !== null && typeof value === "object")
      for (const [k, v] of Object.entries(value))
        walk(v, [...path, Array.isArray(value) ? Number(k) : k]);
  };
  walk(source.data, []);
  source.text.split(/\r?\n/).forEach((line, i) => {
    const at = PEM_RE.exec(line);
    if (at && !lines.has(i + 1))
      r.list.push({
        severity: "error",
        file: source.file,
        line: i + 1,
        column: at.index + 1,
        path: "",
        message: `the lab's text contains key or certificate material (${at[0]})`,
        hint,
      });
  });
}

function reportIssue(r: Reporter, issue: z.core.$ZodIssue): void {
  const path = issue.path.filter(
    (p): p is string | number => typeof p !== "symbol",
  );
  const data = r.source.data;
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(path, valueAt(data, path));
    for (const key of issue.keys) {
      const near = closest(key, known);
      r.error(
        [...path, key],
        key === "<<"
          ? "a YAML merge key (`<<`) is not read: lab files are YAML 1.2, where it is an ordinary key"
          : `unknown key "${key}"`,
        key === "<<"
          ? "write the keys it would merge into this mapping itself"
          : near
            ? `did you mean "${near}"?`
            : `remove it; allowed here: ${known.join(", ")}`,
        { key: true },
      );
    }
    return;
  }
  const [message, hint] = issue.message.includes(HINT)
    ? (issue.message.split(HINT) as [string, string])
    : [issue.message, "see ../shared/lab-format.md for this field"];
  if (issue.code === "invalid_key") {
    // A record key (a zone name, an extra variable) that fails its pattern.
    const [keyMessage, keyHint] = (issue.issues[0]?.message ?? "").split(HINT);
    r.error(
      path,
      `key ${keyMessage}, got ${JSON.stringify(String(path.at(-1)))}`,
      keyHint ?? hint,
      { key: true },
    );
    return;
  }
  const value = valueAt(data, path);
  if (
    (issue.code === "invalid_type" || issue.code === "invalid_value") &&
    value === undefined
  ) {
    const key = String(path.at(-1));
    const parent = formatPath(path.slice(0, -1));
    r.error(
      path,
      `missing required key "${key}"`,
      `add ${key}: ${parent === "" ? "at the top level" : `under ${parent}`}; labs/foo.yaml shows every field`,
    );
    return;
  }
  if (issue.code === "invalid_union") {
    // The tunnel type, missing or wrong: zod's path may end at the union or at its key.
    const at = path.at(-1) === "type" ? path : [...path, "type"];
    const type = valueAt(data, at);
    const near =
      typeof type === "string" ? closest(type, VPN_TYPES) : undefined;
    r.error(
      at,
      type === undefined
        ? 'missing required key "type"'
        : `vpn.type must be openvpn, wireguard or ipsec, got ${describe(type)}`,
      type === undefined
        ? `add type: openvpn, wireguard or ipsec under ${formatPath(at.slice(0, -1))}: the tunnel type the lab offers`
        : near
          ? `did you mean "${near}"?`
          : "pick the tunnel type the lab offers",
    );
    return;
  }
  if (
    issue.code === "invalid_type" &&
    issue.expected === "string" &&
    (typeof value === "number" || typeof value === "boolean")
  ) {
    // YAML read `5.10` as the number 5.1, `no` as false (YAML 1.1): keep it as written.
    const { line, column } = r.source.locate(path);
    const written =
      r.source.text
        .split(/\r?\n/)
        [line - 1]?.slice(column - 1)
        .match(/^[^\s,\]}#]+/)?.[0] ?? String(value);
    r.error(
      path,
      `${message}, got ${typeof value === "number" ? "the number" : "the boolean"} ${written}`,
      `quote it to keep it as written: "${written}"`,
    );
    return;
  }
  const got = describe(value);
  r.error(path, got === undefined ? message : `${message}, got ${got}`, hint);
}

function describe(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (v === null) return "nothing (null)";
  if (typeof v === "string")
    return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return Array.isArray(v) ? "a list" : "a mapping";
}

function valueAt(data: unknown, path: YamlPath): unknown {
  let v = data;
  for (const step of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, step))
      return undefined;
    v = (v as Record<string | number, unknown>)[step];
  }
  return v;
}

/** Keys LabSchema allows at a mapping path, for "did you mean". */
function knownKeys(path: YamlPath, value: unknown): string[] {
  // zod's internal definitions: a walk along object shapes, list elements and record values.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let schema: any = LabSchema;
  const unwrap = () => {
    while (["optional", "default", "pipe"].includes(schema?.def?.type))
      schema = schema.def.innerType ?? schema.def.in;
  };
  for (const step of path) {
    unwrap();
    const def = schema?.def;
    schema =
      def?.type === "object"
        ? def.shape[step]
        : def?.type === "array"
          ? def.element
          : def?.type === "record"
            ? def.valueType
            : undefined;
  }
  unwrap();
  if (schema?.def?.type === "union") {
    const type = (value as { type?: unknown } | undefined)?.type;
    schema = schema.def.options.find(
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (o: any) => o.def.shape.type.def.values.includes(type),
    );
  }
  if (schema?.def?.type === "record")
    return schema.def.keyType.options?.map(String).sort() ?? [];
  return schema?.def?.type === "object"
    ? Object.keys(schema.def.shape).sort()
    : [];
}

/** The candidate at most a few edits away from `word`, if any. */
export function closest(
  word: string,
  candidates: readonly string[],
): string | undefined {
  const near = candidates.filter(
    (c) =>
      distance(word.toLowerCase(), c) <=
      Math.max(2, Math.floor(word.length / 3)),
  );
  return near.sort((a, b) => distance(word, a) - distance(word, b))[0];
}
