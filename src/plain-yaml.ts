import { FAILSAFE_SCHEMA, load, Type } from "js-yaml";

/**
 * A fast reader for the plain YAML that lab files are written in, giving exactly the data the
 * `yaml` package gives (YAML 1.2, core schema) or nothing.
 *
 * The `yaml` package is the reference reader of lab files: it keeps source positions, which
 * every diagnostic needs, and it is strict. It is also ~10x slower than js-yaml, which keeps
 * no positions. A valid lab needs no position, so this reader gives its data with js-yaml and
 * the `yaml` package parses the text only when a diagnostic must be located. It answers only
 * for text where the two readers agree: anything outside that subset (tags, anchors, complex
 * keys, directives, a key that is not a plain name, anything js-yaml warns about or rejects)
 * returns undefined and goes to the reference reader, which reports it as it always has.
 * test/plain-yaml.test.ts compares both readers on generated YAML.
 */

/** YAML 1.2 core schema scalars as the `yaml` package resolves them: its patterns, its order, its values. */
const CORE_1_2 = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type("tag:yaml.org,2002:null", {
      kind: "scalar",
      resolve: (s: string) => /^(?:~|[Nn]ull|NULL)?$/.test(s),
      construct: () => null,
    }),
    new Type("tag:yaml.org,2002:bool", {
      kind: "scalar",
      resolve: (s: string) => /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(s),
      construct: (s: string) => s[0] === "t" || s[0] === "T",
    }),
    // js-yaml keeps one implicit type per tag, so each tag's forms share one type.
    new Type("tag:yaml.org,2002:int", {
      kind: "scalar",
      resolve: (s: string) =>
        /^0o[0-7]+$/.test(s) ||
        /^[-+]?[0-9]+$/.test(s) ||
        /^0x[0-9a-fA-F]+$/.test(s),
      construct: (s: string) =>
        s.startsWith("0o")
          ? parseInt(s.substring(2), 8)
          : s.startsWith("0x")
            ? parseInt(s.substring(2), 16)
            : parseInt(s, 10),
    }),
    new Type("tag:yaml.org,2002:float", {
      kind: "scalar",
      resolve: (s: string) =>
        /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s) ||
        /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s) ||
        /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s),
      construct: (s: string) =>
        /^[-+]?\.(?:inf|Inf|INF)$/.test(s)
          ? s[0] === "-"
            ? Number.NEGATIVE_INFINITY
            : Number.POSITIVE_INFINITY
          : /^\.(?:nan|NaN|NAN)$/.test(s)
            ? NaN
            : parseFloat(s),
    }),
  ],
});

/**
 * Text that may hold something the two readers treat differently, found without parsing. Each
 * pattern matches more than YAML allows there, so it can only send plain text to the reference
 * reader, never the reverse. (Separate patterns: one alternation is 15x slower.)
 */
const OUTSIDE_SUBSET: readonly RegExp[] = [
  /!/, // a tag: js-yaml rejects unknown tags, `yaml` only warns
  // An escape: js-yaml accepts `\U` beyond U+10FFFF and folds an escaped line break before
  // an empty line differently. Lab values have no use for backslashes.
  /\\/,
  /^%/m, // a directive: `%YAML 1.1` would change the schema
  // Document markers other than a bare `---` line: `yaml` rejects a collection on that line,
  // and reads `---#` or an indented `---` as content where js-yaml sees a marker.
  /^(?!---(?:[ \t]+(?:#.*)?)?$)[ \t]*(?:---|\.\.\.)/m,
  /^ *\t/m, // a tab in a line's indentation: the readers differ on where a block scalar ends
  /(?:^|[ \t])-[ \t]*(?:#.*)?$/m, // an empty sequence entry: js-yaml nests `- -` entries differently
  /\?(?:\s|$)/, // an explicit, possibly complex, key
  /["'[\]{},:]#/, // `yaml` wants a space before a comment; js-yaml reads `{#` as one
  /^[ \t]*#\S/m, // `yaml` rejects a value on the line after a `#c` comment line (not `# c`)
  // A line that is neither a key, a list entry, a comment, a bracket nor `---`: a scalar below
  // its key or a continued one. After comment lines `yaml` rejects some that js-yaml reads.
  // The indentation is taken whole (a lookahead and a backreference: an atomic group), or each
  // shorter indentation would scan the line again.
  /^(?=([ \t]*))\1(?!-(?:[ \t\r]|$)|---(?:[ \t\r]|$)|[#[\]{},]|[^\n]*:(?:[ \t\r]|$))\S/m,
  // An anchor (after `"k":` too, in flow), so maybe aliases: js-yaml shares the aliased
  // object, `yaml` copies it and counts the copies.
  /(?:^|[\s[{,:])&\S/m,
  /\r(?!\n)/, // a lone carriage return: a line break to js-yaml, content to `yaml`
  // A block scalar (`|` or `>` ending a line): the readers differ on leading blank lines that
  // are more indented and on trailing lines kept by `+`. Lab values are one-line strings.
  /(?:^|[ \t])[|>][-+0-9]*[ \t]*(?:#.*)?$/m,
];

/**
 * A flow collection as a key (js-yaml turns it into a string), its `:` maybe on a later line:
 * a `]` or `}` followed, past white space and whole comment lines, by `:` or by a comment
 * holding one. (A flow mapping's key may also come without `:`, `{a, [b]}`: see keysAreNames.)
 * The language of `/[\]}]\s*(?:#[^\n]*\n\s*)*(?:#[^\n]*)?:/`, decided in one pass from the
 * end: that pattern rescans every following comment line from each bracket, so a file of
 * `#]` lines took minutes. test/plain-yaml.test.ts checks both agree.
 */
export function hasFlowCollectionKey(text: string): boolean {
  // What must follow the bracket, past white space, for any match: a `:` or a comment.
  if (!/[\]}]\s*[:#]/.test(text)) return false;
  // Whether the pattern's tail (after the bracket) matches from position i + 1.
  let tailMatches = false;
  // Whether a `:` comes before the next line break, and whether the tail matches after that
  // line break (false while there is none: a comment on the last line reaches no other).
  let colonInLine = false;
  let afterLineBreak = false;
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      colonInLine = false;
      afterLineBreak = tailMatches;
      // A line break is white space: the tail skips it.
    } else if (c === 0x3a) {
      colonInLine = true;
      tailMatches = true;
    } else if (c === 0x23) {
      // A comment: a `:` later in its line ends the match; else on past its line break.
      tailMatches = colonInLine || afterLineBreak;
    } else if (c === 0x5d || c === 0x7d) {
      if (tailMatches) return true;
      tailMatches = false;
    } else if (!WHITE_SPACE.test(text[i]!)) {
      tailMatches = false;
    }
  }
  return false;
}

const WHITE_SPACE = /\s/;

/** `yaml` allows an implicit key of at most 1,024 characters; a longer line is left to it. */
function hasLongLine(text: string): boolean {
  for (let start = 0; ;) {
    const end = text.indexOf("\n", start);
    if ((end < 0 ? text.length : end) - start > 1024) return true;
    if (end < 0) return false;
    start = end + 1;
  }
}

/**
 * Keys js-yaml may have made from a value of another type: `TRUE`, `~`, `.inf`, `.NaN` or
 * `1e400` as a key become "true", "null", "Infinity" or "NaN". A key really spelled so is
 * left to the reference reader too.
 */
const NOT_STRING_KEYS = new Set(["true", "false", "null", "Infinity", "NaN"]);

/** A key both readers read as the same string and that no check needs to locate as odd. */
const NAME_KEY = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/**
 * The data of `text` if it is a mapping written in the plain subset; undefined when the
 * reference reader must decide (including for every error). Never throws.
 */
export function readPlainYaml(
  text: string,
): Record<string, unknown> | undefined {
  // Long lines first: every pattern then scans lines of at most 1,024 characters.
  if (
    hasLongLine(text) ||
    OUTSIDE_SUBSET.some((re) => re.test(text)) ||
    hasFlowCollectionKey(text)
  )
    return undefined;
  let warned = false;
  let data: unknown;
  try {
    data = load(text, {
      schema: CORE_1_2,
      onWarning: () => {
        warned = true;
      },
    });
  } catch {
    return undefined;
  }
  if (warned || !isMapping(data) || !keysAreNames(data)) return undefined;
  return data;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Every mapping key is a plain name and every value is given. Rules out keys js-yaml and `yaml`
 * turn into different strings (null, numbers, empty), `<<`, `__proto__`, and a collection as a
 * flow mapping's key without a value (`{a, [b]}`, which js-yaml reads as `{a: null, b: null}`).
 * Walks with its own stack.
 */
function keysAreNames(root: Record<string, unknown>): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      for (const item of node) stack.push(item);
    } else if (isMapping(node)) {
      for (const key of Object.keys(node)) {
        const value = node[key];
        // A key in NOT_STRING_KEYS may have been written as no string (TRUE, ~, .inf), which
        // the reference reader reports.
        if (!NAME_KEY.test(key) || NOT_STRING_KEYS.has(key) || value === null)
          return false;
        stack.push(value);
      }
    }
  }
  return true;
}
