import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
} from "yaml";
import { fileError, type Diagnostic } from "./diagnostics.js";

/** A YAML path: mapping keys and sequence indexes from the document root. */
export type YamlPath = readonly (string | number)[];

/** A parsed lab file: its plain data and the way back from a YAML path to a line and column. */
export interface LabSource {
  readonly file: string;
  readonly text: string;
  readonly data: unknown;
  /** The node at `path`, or its nearest existing ancestor. `key` points at the mapping key instead of its value. */
  locate(
    path: YamlPath,
    opts?: { key?: boolean },
  ): { line: number; column: number };
}

/** A lab file describes one lab in a few kilobytes: a larger one is the wrong file. */
export const MAX_LAB_BYTES = 256 * 1024;
/** A lab needs few aliases; the cap defuses "billion laughs" documents. */
const MAX_ALIAS_COUNT = 100;
/** A file of stray brackets has one syntax error per bracket: nobody reads past the first few. */
const MAX_SYNTAX_ERRORS = 20;

/**
 * Parse one lab file with the `yaml` package (YAML 1.2 core schema: `no` stays a string,
 * `0600` a number), using its own guards: unique keys, the alias cap, unresolved tags as
 * errors. Never throws for bad input.
 */
export function parseLabText(
  file: string,
  input: string | Uint8Array,
): { source?: LabSource; diagnostics: Diagnostic[] } {
  const fail = (message: string, hint: string, line = 1, column = 1) => ({
    diagnostics: [
      { ...fileError(file, message, hint), line, column } as Diagnostic,
    ],
  });
  const size =
    typeof input === "string" ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_LAB_BYTES)
    return fail(
      `file is ${size} bytes, more than a lab file may be (${MAX_LAB_BYTES})`,
      "a lab file describes one lab in a few kilobytes; check that this is the right file",
    );
  let text: string;
  try {
    text =
      typeof input === "string"
        ? input
        : new TextDecoder("utf-8", { fatal: true }).decode(input);
  } catch {
    return fail(
      "file is not UTF-8 text",
      "save the lab file as UTF-8 (`iconv -f latin1 -t utf-8` converts a Latin-1 file)",
    );
  }
  if (/^\s*$/.test(text.replace(/^\s*#.*$/gm, "")))
    return fail(
      "file is empty",
      "start from labs/foo.yaml, the documented example of lab format version 1",
    );

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    version: "1.2",
    prettyErrors: false,
    // The yaml package reports what it cannot represent through process warnings otherwise.
    logLevel: "error",
  });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  // `%YAML 1.1` would read `0644` as octal and `yes` as true: a lab means what YAML 1.2 reads.
  if (doc.directives?.yaml.explicit && doc.directives.yaml.version !== "1.2")
    return fail(
      `the %YAML ${doc.directives.yaml.version} directive would read this file by other rules than YAML 1.2's`,
      "remove the %YAML line: lab files are YAML 1.2",
    );
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0)
    return {
      diagnostics: problems.slice(0, MAX_SYNTAX_ERRORS).map((e) => ({
        ...fileError(file, ...syntaxMessage(e.code, e.message)),
        ...at(e.pos[0]),
      })),
    };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // Unresolved aliases and the alias cap are found only while building the data.
    const message = e instanceof Error ? e.message : String(e);
    const alias = /alias.*?: (\S+)$/.exec(message)?.[1];
    const offset = alias === undefined ? -1 : text.indexOf(`*${alias}`);
    const where = offset >= 0 ? at(offset) : { line: 1, column: 1 };
    return fail(
      /excessive alias/i.test(message)
        ? `too many alias expansions (more than ${MAX_ALIAS_COUNT})`
        : `cannot read YAML: ${message}`,
      "write the values out instead of aliasing them",
      where.line,
      where.column,
    );
  }
  if (!isMap(doc.contents))
    return fail(
      "the document is not a mapping of lab settings",
      "a lab file is a YAML mapping starting with `version: 1`; see labs/foo.yaml",
    );
  return {
    diagnostics: [],
    source: {
      file,
      text,
      data,
      locate: (path, opts = {}) => at(findOffset(doc, path, opts.key === true)),
    },
  };
}

/** What the yaml package reports, said for a lab file; other problems in its own words. */
const SYNTAX: Record<string, [string, string]> = {
  DUPLICATE_KEY: ["duplicate key in a mapping", "each key may appear once"],
  MULTIPLE_DOCS: [
    "the file holds more than one YAML document",
    "a lab file is one document: put each lab in a file of its own",
  ],
};
const syntaxMessage = (code: string, message: string): [string, string] =>
  SYNTAX[code] ?? [
    `YAML: ${message.split("\n")[0]}`,
    "fix the YAML here (indentation, quotes, brackets; lab files use no tags)",
  ];

/**
 * The offset to point at for `path`: a scalar's value; for a mapping or list, or a key missing
 * below it, the key that names it, which is where a reader looks for "this section".
 */
function findOffset(doc: Document, path: YamlPath, wantKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  let keyOffset: number | undefined;
  for (const [i, step] of path.entries()) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === step,
      );
      if (!pair) break;
      keyOffset = (pair.key as { range?: number[] }).range?.[0];
      if (i === path.length - 1 && wantKey && keyOffset !== undefined)
        return keyOffset;
      next = pair.value;
    } else if (isSeq(node) && typeof step === "number") {
      keyOffset = undefined;
      next = node.items[step];
    }
    const range = (next as { range?: number[] } | undefined)?.range;
    if (!range) break;
    node = next;
    offset = range[0]!;
  }
  return isScalar(node) || keyOffset === undefined ? offset : keyOffset;
}
