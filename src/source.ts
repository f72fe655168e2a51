import {
  LineCounter,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Document,
  type Node,
} from "yaml";
import {
  MAX_DIAGNOSTICS_PER_FILE,
  notShown,
  type Diagnostic,
} from "./diagnostics.js";
import { readPlainYaml } from "./plain-yaml.js";

/** A YAML path: mapping keys and sequence indexes from the document root. */
export type YamlPath = readonly (string | number)[];

/** A parsed lab file: its plain data and a way back from a YAML path to a line and column. */
export interface LabSource {
  readonly file: string;
  readonly text: string;
  readonly data: unknown;
  /** Position of the node at `path`, or of its nearest existing ancestor. `key` points at the mapping key instead of its value. */
  locate(
    path: YamlPath,
    opts?: { key?: boolean },
  ): { line: number; column: number };
  /**
   * Drop the syntax tree; `locate` parses the text again if it is asked later. A lab's tree
   * is dozens of times its text: a large set of labs waiting for the cross-lab rules, which
   * rarely report anything, must not hold every tree at once.
   */
  compact(): void;
}

/** A lab file is a few kilobytes; anything this large is a mistake, and rejecting it early keeps every run fast. */
export const MAX_LAB_BYTES = 1024 * 1024;
/** The message and hint for a lab file over MAX_LAB_BYTES, whether it is found before or after reading. */
export function tooLarge(
  size: number,
  { atLeast = false } = {},
): [message: string, hint: string] {
  return [
    atLeast
      ? `file is larger than a lab file may be (${MAX_LAB_BYTES} bytes)`
      : `file is ${size} bytes, more than a lab file may be (${MAX_LAB_BYTES} bytes)`,
    "a lab file describes one lab in a few kilobytes; check that this is the right file",
  ];
}

/** Aliases are legal YAML, but a lab needs few: a low cap defuses "billion laughs" documents. */
const MAX_ALIAS_COUNT = 100;

export type ParseResult =
  { ok: true; source: LabSource } | { ok: false; diagnostics: Diagnostic[] };

/**
 * The first MAX_DIAGNOSTICS_PER_FILE problems as diagnostics, then one line counting the rest:
 * a file of 300,000 stray quotes has as many syntax errors, and nobody reads them all.
 */
function capped<T>(
  problems: readonly T[],
  toDiagnostic: (p: T) => Diagnostic,
): Diagnostic[] {
  // Each made only when it may be shown: a file of stray brackets has a million problems.
  const shown: Diagnostic[] = [];
  const seen = new Set<string>();
  let i = 0;
  for (; i < problems.length && shown.length < MAX_DIAGNOSTICS_PER_FILE; i++) {
    const d = toDiagnostic(problems[i]!);
    // The same message at the same place, once.
    const key = `${d.line}:${d.column} ${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    shown.push(d);
  }
  const more = problems.length - i;
  if (more > 0) shown.push(notShown(more, shown[shown.length - 1]!));
  return shown;
}

/**
 * The flow collections (`[...]`, `{...}`) of a document that were never closed, by the offset
 * where the parser gave up on them (their end) and their closing bracket; the innermost first,
 * as it reports them.
 */
function unclosedFlowCollections(
  doc: Document,
  text: string,
): Map<string, number[]> {
  const byEnd = new Map<string, number[]>();
  // A document nested past the stack is reported as such; its brackets then stay where the
  // parser put them.
  try {
    visitFlow(doc, text, byEnd);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    byEnd.clear();
  }
  return byEnd;
}

function visitFlow(
  doc: Document,
  text: string,
  byEnd: Map<string, number[]>,
): void {
  visit(doc, {
    Collection(_, node) {
      const range = node.range;
      if (!node.flow || !range) return;
      const close = text[range[0]] === "[" ? "]" : "}";
      if (text.slice(range[0], range[1]).trimEnd().endsWith(close)) return;
      const key = `${range[1]} ${close}`;
      const list = byEnd.get(key) ?? [];
      list.unshift(range[0]);
      byEnd.set(key, list);
    },
  });
}

/**
 * Parse the text of one lab file. Never throws for bad input: every problem comes back as a
 * diagnostic. `reader: "reference"` skips the fast reader of plain YAML (tests compare both).
 */
export function parseLabSource(
  file: string,
  input: string | Uint8Array,
  { reader = "fast" }: { reader?: "fast" | "reference" } = {},
): ParseResult {
  const fail = (
    message: string,
    hint: string,
    line = 1,
    column = 1,
  ): ParseResult => ({
    ok: false,
    diagnostics: [
      { severity: "error", file, line, column, path: "", message, hint },
    ],
  });

  const size =
    typeof input === "string" ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_LAB_BYTES) {
    return fail(...tooLarge(size));
  }
  let text: string;
  if (typeof input === "string") {
    text = input;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(input);
    } catch {
      const bad = firstInvalidUtf8(input);
      return fail(
        `file is not valid UTF-8 text: byte 0x${input[bad.offset]!.toString(16).padStart(2, "0")} here does not begin a valid UTF-8 sequence`,
        "save the lab file as UTF-8 (it may be in Latin-1 or another legacy encoding: `iconv -f latin1 -t utf-8`)",
        bad.line,
        bad.column,
      );
    }
  }
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const lineCounter = new LineCounter();
    lineCounter.addNewLine(0); // the first line starts at offset 0
    for (
      let i = text.indexOf("\n");
      i >= 0 && i < nul;
      i = text.indexOf("\n", i + 1)
    ) {
      lineCounter.addNewLine(i + 1);
    }
    const pos = lineCounter.linePos(nul);
    return fail(
      "file contains a NUL byte: it is binary, not YAML",
      "give a YAML lab file",
      pos.line,
      pos.col,
    );
  }
  // YAML allows a lone carriage return as a line break (old Mac files); the yaml package
  // reads it as content. One character for one keeps every offset.
  if (text.includes("\r")) text = text.replace(/\r(?!\n)/g, "\n");
  // Line by line: one pattern over the whole text, `^(\s*(#.*)?\n?)*$`, backtracks
  // exponentially over a run of blank lines that ends in something else.
  if (text.split("\n").every((line) => /^\s*(?:#.*)?$/.test(line))) {
    return fail(
      "file is empty",
      "start from labs/foo.yaml, the documented example of lab format version 1",
    );
  }

  const plain = reader === "fast" ? readPlainYaml(text) : undefined;
  if (plain !== undefined)
    return { ok: true, source: labSource(file, text, plain, undefined) };

  const { doc, lineCounter } = parseTree(text);
  /** An error at a character offset of the text. */
  const errorAt = (
    offset: number,
    message: string,
    hint: string,
  ): Diagnostic => {
    const pos = lineCounter.linePos(offset);
    return {
      severity: "error",
      file,
      line: pos.line,
      column: pos.col,
      path: "",
      message,
      hint,
    };
  };
  const problems = doc.errors;
  if (problems.length > 0) {
    let opened: Map<string, number[]> | undefined;
    const toDiagnostic = (e: (typeof problems)[number]): Diagnostic => {
      // The parser reports an unclosed `[` or `{` where the text goes on without it, once
      // per collection: each is shown at its own opening bracket instead.
      const close = /^Flow (?:sequence|map) .*end with an? ([\]}])/.exec(
        e.message,
      )?.[1];
      if (close) opened ??= unclosedFlowCollections(doc, text);
      const open = close
        ? opened!.get(`${e.pos[0]} ${close}`)?.shift()
        : undefined;
      if (open !== undefined)
        return errorAt(
          open,
          `YAML syntax error: this ${close === "]" ? "[" : "{"} is never closed: a flow ${close === "]" ? "sequence" : "mapping"} must end with ${close}`,
          `close it with ${close}; if the lines after it belong to it, indent them under its key`,
        );
      const [message, hint] =
        e.code === "DUPLICATE_KEY"
          ? [
              "duplicate key in a mapping",
              "each key may appear once; remove or merge the repeated one",
            ]
          : /call stack/i.test(e.message)
            ? [
                "the YAML document is nested too deeply",
                "a lab file is a few levels deep; check for runaway brackets",
              ]
            : e.code === "MULTIPLE_DOCS"
              ? [
                  "the file holds more than one YAML document",
                  "a lab file is one document: remove the `---` line and what follows it, or put that lab in a file of its own",
                ]
              : [
                  `YAML syntax error: ${firstLine(e.message)}`,
                  "fix the YAML syntax at this position (indentation, quotes, brackets)",
                ];
      return errorAt(e.pos[0], message, hint);
    };
    return { ok: false, diagnostics: capped(problems, toDiagnostic) };
  }

  // `%YAML 1.1` makes the yaml package read by YAML 1.1's rules (`0644` octal, `19:54` base
  // 60, `yes` a boolean): a lab means what YAML 1.2 reads, so any other version is refused.
  const directive = /^%YAML[ \t]+(\S*)/m.exec(text);
  if (doc.directives?.yaml.explicit && directive && directive[1] !== "1.2") {
    const pos = lineCounter.linePos(directive.index);
    return fail(
      `the %YAML ${directive[1]} directive would read this file by rules other than YAML 1.2's`,
      "remove the %YAML line: lab files are YAML 1.2",
      pos.line,
      pos.col,
    );
  }

  const structural = structureProblems(doc);
  if (structural.length > 0) {
    return {
      ok: false,
      diagnostics: capped(structural, (p) =>
        errorAt(p.offset, p.message, p.hint),
      ),
    };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const aliases = /alias/i.test(message);
    const at = lineCounter.linePos((aliases && aliasPastCap(doc)) || 0);
    return fail(
      aliases
        ? `too many alias expansions: this alias takes the document past ${MAX_ALIAS_COUNT} (a YAML "billion laughs" document?)`
        : `cannot read YAML: ${firstLine(message)}`,
      aliases
        ? `use at most ${MAX_ALIAS_COUNT} alias expansions, or write the values out`
        : "check the YAML document",
      at.line,
      at.col,
    );
  }

  const root = doc.contents;
  const rootPos = root?.range
    ? lineCounter.linePos(root.range[0])
    : { line: 1, col: 1 };
  if (!isMap(root)) {
    return fail(
      "the document is not a mapping of lab settings",
      "a lab file is a YAML mapping starting with `version: 1`; see labs/foo.yaml",
      rootPos.line,
      rootPos.col,
    );
  }

  return {
    ok: true,
    source: labSource(file, text, data, { doc, lineCounter }),
  };
}

/**
 * Where the first byte sequence that is not UTF-8 starts. The decoder that replaces each bad
 * sequence with U+FFFD writes the text back byte for byte up to the first of them: the first
 * byte that differs lies inside the replacement character, which starts where the bad
 * sequence does. Line and column count as the lab's other diagnostics do (UTF-16 units).
 */
function firstInvalidUtf8(bytes: Uint8Array): {
  offset: number;
  line: number;
  column: number;
} {
  const again = Buffer.from(new TextDecoder("utf-8").decode(bytes), "utf8");
  let offset = 0;
  while (offset < bytes.length && bytes[offset] === again[offset]) offset++;
  while (offset > 0 && (again[offset]! & 0xc0) === 0x80) offset--;
  // lastIndexOf from -1 would search from the end: a bad first byte is on line 1.
  const lineStart = offset > 0 ? bytes.lastIndexOf(0x0a, offset - 1) + 1 : 0;
  let line = 1;
  for (
    let i = bytes.indexOf(0x0a);
    i >= 0 && i < lineStart;
    i = bytes.indexOf(0x0a, i + 1)
  )
    line++;
  const before = new TextDecoder("utf-8").decode(
    bytes.subarray(lineStart, offset),
  );
  return { offset, line, column: before.length + 1 };
}

/**
 * The offset of the alias at which the yaml package's alias cap stops `toJS`: the same count,
 * kept in the same order (document order; an anchored node counts once, then once more per
 * alias, times the most aliases a path through it expands),
 * so the message points at the alias and not at the top of the file.
 */
function aliasPastCap(doc: Document): number | undefined {
  const seen = new Map<string, Node>();
  const counts = new Map<Node, { count: number; aliasCount: number }>();
  const aliasCount = (node: unknown): number => {
    if (isAlias(node)) {
      const target = counts.get(seen.get(node.source)!);
      return target ? target.count * target.aliasCount : 0;
    }
    if (isMap(node) || isSeq(node))
      return node.items.reduce(
        (m: number, item) => Math.max(m, aliasCount(item)),
        0,
      );
    if (isPair(node))
      return Math.max(aliasCount(node.key), aliasCount(node.value));
    return 1;
  };
  let found: number | undefined;
  visit(doc, (_key, node) => {
    if (isAlias(node)) {
      const target = seen.get(node.source);
      if (!target) return undefined;
      const data = counts.get(target)!;
      data.count += 1;
      if (data.aliasCount === 0) data.aliasCount = aliasCount(target);
      if (data.count * data.aliasCount > MAX_ALIAS_COUNT) {
        found = node.range?.[0];
        return visit.BREAK;
      }
    } else if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor) {
      seen.set(node.anchor, node);
      counts.set(node, { count: 1, aliasCount: 0 });
    }
    return undefined;
  });
  return found;
}

/** A parsed lab; without a tree, `locate` parses the text with the reference reader when first asked. */
function labSource(
  file: string,
  text: string,
  data: unknown,
  parsed: Tree | undefined,
): LabSource {
  let tree = parsed;
  return {
    file,
    text,
    data,
    locate(path, opts = {}) {
      tree ??= parseTree(text);
      const offset = findOffset(tree.doc, path, opts.key === true);
      const pos = tree.lineCounter.linePos(offset);
      return { line: pos.line, column: pos.col };
    },
    compact() {
      tree = undefined;
    },
  };
}

interface Tree {
  readonly doc: Document;
  readonly lineCounter: LineCounter;
}

/** The one way lab text is parsed, so a tree parsed again after `compact` locates the same. */
function parseTree(text: string): Tree {
  const lineCounter = new LineCounter();
  // The yaml package makes an Error per syntax problem, and capturing each one's stack trace
  // was most of the time (and memory) of a file of a million stray brackets: nothing reads them.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const doc = parseDocument(text, {
      lineCounter,
      // YAML 1.2 core schema: `no` stays a string and `0600` stays a number, as a reader expects.
      version: "1.2",
      // Duplicate keys are found by structureProblems, in linear time.
      uniqueKeys: false,
      prettyErrors: false,
      strict: true,
    });
    return { doc, lineCounter };
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

interface StructureProblem {
  readonly offset: number;
  readonly message: string;
  readonly hint: string;
}

const NOT_A_NAME: Omit<StructureProblem, "offset"> = {
  message:
    "a mapping key here is a list, a mapping, an alias, null or empty, not a name",
  hint: "write keys as plain names, e.g. `name: foo`; a `?` complex key has no meaning in a lab file",
};

/**
 * What the YAML allows but a lab file cannot mean, each at its offset:
 * - keys that are not names (`? [a, b]`, `*alias`, `~`, none): as plain data they would become
 *   strings like "[ a, b ]" that no message can point back to;
 * - `__proto__` as a key, which plain data cannot hold as an ordinary key;
 * - keys that differ in YAML but not as text (`1` and `"1"`): one would silently replace the other;
 * - tags (`!!str 1`, `!foo`): the lab format has no use for them, and an unknown one would be
 *   ignored silently;
 * - an alias to no anchor before it, or inside the node it refers to (a cycle).
 * Walks with its own stack: depth is only bounded by the parser.
 */
function structureProblems(doc: Document): StructureProblem[] {
  const found: StructureProblem[] = [];
  const at = (node: Node | null | undefined, fallback: number) =>
    node?.range?.[0] ?? fallback;
  // Nodes are visited in document order (a node before what it holds, a key before its value),
  // so `anchors` holds, at each alias, the last node anchored before it: the node it refers
  // to, as the yaml package's Alias.resolve finds it. That walks the whole document on every
  // call, which made a file of 20,000 aliases take half a minute.
  const anchors = new Map<string, Node>();
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      const offset = at(node, 0);
      if (!target) {
        found.push({
          offset,
          message: `the alias *${node.source} refers to no anchor &${node.source} before it`,
          hint: "define the anchor before its first use, or write the value out",
        });
      } else if (
        target.range &&
        target.range[0] <= offset &&
        offset < target.range[1]
      ) {
        found.push({
          offset,
          message: `the alias *${node.source} lies inside the node it refers to (a cycle)`,
          hint: "write the value out instead of referring to the node that contains it",
        });
      }
      continue;
    }
    if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor)
      anchors.set(node.anchor, node);
    if ((isScalar(node) || isMap(node) || isSeq(node)) && node.tag) {
      found.push({
        offset: at(node, 0),
        message: `YAML tag ${node.tag.replace(/^tag:yaml\.org,2002:/, "!!")} is not part of the lab format`,
        hint: "remove the tag and write the plain value, e.g. `port: 1194` or `name: foo`",
      });
    }
    if (isMap(node)) {
      // Every key's text, once: the yaml package's own check (uniqueKeys) compares every pair,
      // minutes for a mapping of 40,000 keys.
      const seen = new Map<string, string>();
      const children: unknown[] = [];
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        const offset = at(key, at(pair.value as Node | null, at(node, 0)));
        if (!isScalar(key) || key.value === null) {
          found.push({ offset, ...NOT_A_NAME });
        } else if (typeof key.value !== "string") {
          // `0x10:` is the key "16" and `TRUE:` the key "true": a lab's keys are names, and
          // a pass-through key (trigger extra) must keep its spelling.
          found.push({
            offset,
            message: `the key ${String(key.source ?? key.value)} reads as a ${typeof key.value} in YAML, not a name`,
            hint: `quote it: "${String(key.source ?? key.value)}"`,
          });
        } else {
          const text = String(key.value);
          if (text === "__proto__") {
            found.push({
              offset,
              message: "`__proto__` cannot be a key",
              hint: "remove it, or rename it if it is meant to be a value",
            });
          } else if (seen.has(text)) {
            found.push({
              offset,
              message:
                seen.get(text) === `${key.type}:${key.source}`
                  ? `duplicate key ${JSON.stringify(text)} in a mapping`
                  : `the key ${JSON.stringify(text)} appears twice in this mapping (written differently)`,
              hint: "each key may appear once; remove or merge the repeated one",
            });
          }
          if (!seen.has(text)) seen.set(text, `${key.type}:${key.source}`);
          children.push(key);
        }
        children.push(pair.value);
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    } else if (isSeq(node)) {
      for (let i = node.items.length - 1; i >= 0; i--)
        stack.push(node.items[i]);
    }
  }
  return found.sort((a, b) => a.offset - b.offset);
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}

/**
 * Walk the YAML tree along `path` as far as it exists and return an offset to point at:
 * a scalar's value; for a mapping or list (or a key missing below it) the key that names it,
 * which is where a reader looks for "this section".
 */
function findOffset(doc: Document, path: YamlPath, wantKey: boolean): number {
  let node: unknown = doc.contents;
  let valueOffset = (doc.contents as Node | null)?.range?.[0] ?? 0;
  let keyOffset: number | undefined;
  const here = () =>
    isScalar(node) || keyOffset === undefined ? valueOffset : keyOffset;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    const last = i === path.length - 1;
    // Inside an alias the data is the anchor's, but the problem is here, where it was used:
    // point at the alias, not into the anchored node (whose own place may be fine).
    if (isAlias(node)) return valueOffset;
    if (isMap(node) && typeof step === "string") {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === step,
      );
      if (!pair) return keyOffset ?? valueOffset;
      const key = pair.key as Node;
      const value = pair.value as Node | null;
      keyOffset = key.range?.[0];
      valueOffset = value?.range?.[0] ?? keyOffset ?? valueOffset;
      if (last && wantKey && keyOffset !== undefined) return keyOffset;
      node = value;
    } else if (isSeq(node) && typeof step === "number") {
      const item = node.items[step] as Node | undefined;
      if (!item) return here();
      keyOffset = undefined;
      valueOffset = item.range?.[0] ?? valueOffset;
      node = item;
    } else {
      return here();
    }
  }
  return here();
}
