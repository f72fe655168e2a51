/**
 * NetworkManager keyfiles are GLib key files, not INI files in the `ini` package's sense:
 * lists are `a;b;` with `;` as separator, section names may contain dots (`[wireguard-peer.<key>]`),
 * and GLib escapes with `\s \n \t \r \\`. The `ini` package escapes `;` as `\;` (which GLib reads
 * as a literal semicolon inside one list element) and quotes dotted section names, so keyfiles
 * are built here as data and serialized by this small writer.
 */

/** A keyfile value: text, a number, a boolean (`true`/`false`) or a list (`a;b;`). */
export type KeyfileValue = string | number | boolean | readonly string[];

export interface KeyfileSection {
  readonly name: string;
  /** Key/value pairs in the order written; `undefined` values are left out. */
  readonly entries: readonly (readonly [string, KeyfileValue | undefined])[];
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Serialize sections after `#` comment lines. Throws on a key or section name GLib cannot hold (a programming error). */
export function serializeKeyfile(
  comments: readonly string[],
  sections: readonly KeyfileSection[],
): string {
  const out: string[] = comments.map((c) => `# ${c}`.trimEnd());
  for (const section of sections) {
    if (section.name === "" || /[[\]\x00-\x1f]/.test(section.name))
      throw new Error(
        `invalid keyfile section name ${JSON.stringify(section.name)}`,
      );
    if (out.length > 0) out.push("");
    out.push(`[${section.name}]`);
    for (const [key, value] of section.entries) {
      if (value === undefined) continue;
      if (!KEY_RE.test(key))
        throw new Error(`invalid keyfile key ${JSON.stringify(key)}`);
      out.push(`${key}=${formatValue(value)}`);
    }
  }
  return `${out.join("\n")}\n`;
}

function formatValue(value: KeyfileValue): string {
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value))
      throw new Error(`invalid keyfile number ${value}`);
    return String(value);
  }
  if (typeof value === "string") return escapeString(value);
  return value.map((v) => `${escapeString(v).replace(/;/g, "\\;")};`).join("");
}

/** Anything escapeString changes: backslash, newline, tab, carriage return, a leading space. */
const NEEDS_ESCAPE = /[\\\n\t\r]|^ /;

function escapeString(s: string): string {
  // Most values (names, addresses, paths) need no escape: skip the four replaces for them.
  if (!NEEDS_ESCAPE.test(s)) return s;
  let out = s
    .replace(/\\/g, "\\\\")
    .replace(/\n/g, "\\n")
    .replace(/\t/g, "\\t")
    .replace(/\r/g, "\\r");
  if (out.startsWith(" ")) out = `\\s${out.slice(1)}`;
  return out;
}

/** A systemd service (its unit file is a key file too), started at boot by multi-user.target. */
export function serviceUnit(
  header: string,
  unit: KeyfileSection["entries"],
  service: KeyfileSection["entries"],
): string {
  return serializeKeyfile(
    [header],
    [
      { name: "Unit", entries: unit },
      { name: "Service", entries: service },
      { name: "Install", entries: [["WantedBy", "multi-user.target"]] },
    ],
  );
}
