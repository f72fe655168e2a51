import { codePointOrder } from "./file.js";

/** How bad a finding is: errors stop generation, warnings are printed and generation goes on. */
export type Severity = "error" | "warning";

/** One located finding about a lab file. Lines and columns are 1-based. */
export interface Diagnostic {
  readonly severity: Severity;
  /** The lab file as the caller named it. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** YAML path of the offending node, e.g. `runners[0].address`; empty for the whole document. */
  readonly path: string;
  /** What is wrong. */
  readonly message: string;
  /** How to fix it. */
  readonly hint: string;
}

/** Thrown by the library when a lab (or a set of labs) is invalid: it carries every error found, not the first. */
export class LabError extends Error {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    super(
      `${errors.length} error(s) in lab input:\n` +
        errors.map((d) => formatDiagnostic(d)).join("\n"),
    );
    this.name = "LabError";
    this.diagnostics = diagnostics;
  }
}

/**
 * Characters a terminal does not show, or shows reordered: controls, format characters (zero
 * width, bidi overrides, a BOM), line and paragraph separators, private and unassigned ones.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]/gu;

/** `s` with each invisible character written as `\u{85}`, so `got "prod<NEL>"` cannot read as `got "prod"`. */
export function visible(s: string): string {
  return s.replace(
    INVISIBLE,
    (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`,
  );
}

/** Like {@link visible}, for text of several lines: line feeds and tabs stay as they are. */
export function visibleLines(s: string): string {
  return s.replace(INVISIBLE, (c) =>
    c === "\n" || c === "\t"
      ? c
      : `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`,
  );
}

/** `file:line:col: [warning: ]path: message; hint` — the form editors and CI logs link to. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.column}`;
  const kind = d.severity === "warning" ? "warning: " : "";
  const path = d.path === "" ? "" : `${d.path}: `;
  const hint = d.hint === "" ? "" : `; ${d.hint}`;
  return visible(`${where}: ${kind}${path}${d.message}${hint}`);
}

/** The lines of the text excerpts were last taken from: a file's diagnostics share one split. */
let split: { text: string; lines: string[] } | undefined;
function linesOf(text: string): string[] {
  // YAML's line breaks: LF, CRLF, and a lone CR.
  if (split?.text !== text) split = { text, lines: text.split(/\r\n|\r|\n/) };
  return split.lines;
}

/** The source line of a diagnostic with a caret under its column, for humans (netplan style). */
export function excerpt(d: Diagnostic, text: string): string {
  if (text === "") return "";
  const line = linesOf(text)[d.line - 1];
  if (line === undefined || line.length > 240) return "";
  // Control and bidi characters escaped, as in messages (a lab must not drive the terminal);
  // the caret counts what is shown before it.
  const shown = (s: string) => visible(s.replace(/\t/g, " "));
  const before = shown(line.slice(0, Math.max(0, d.column - 1)));
  return `  ${shown(line)}\n  ${" ".repeat(before.length)}^`;
}

/** Errors first, then by file, position and path, so output order never depends on rule order. */
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) ||
      codePointOrder(a.file, b.file) ||
      // The count of a file's problems not shown comes after those shown.
      Number(isNotShown(a)) - Number(isNotShown(b)) ||
      a.line - b.line ||
      a.column - b.column ||
      codePointOrder(a.path, b.path) ||
      codePointOrder(a.message, b.message),
  );
}

/**
 * A file with hundreds of problems is not a lab file with typos (a values file given by
 * mistake, say): the first hundred are shown, the rest counted. Each shown one is located in
 * the text, which for a large file would otherwise cost time per problem.
 */
export const MAX_DIAGNOSTICS_PER_FILE = 100;

const NOT_SHOWN = / more problems in this file are not shown$/;

function isNotShown(d: Diagnostic): boolean {
  return d.path === "" && NOT_SHOWN.test(d.message);
}

/**
 * An error about a file as a whole (it cannot be read, is not a lab, is given wrongly), at its
 * start and at no YAML path.
 */
export function fileError(
  file: string,
  message: string,
  hint: string,
): Diagnostic {
  return {
    severity: "error",
    file,
    line: 1,
    column: 1,
    path: "",
    message,
    hint,
  };
}

/** The one line that stands for the problems of a file beyond MAX_DIAGNOSTICS_PER_FILE. */
export function notShown(
  count: number,
  at: Pick<Diagnostic, "file" | "line" | "column">,
): Diagnostic {
  return {
    severity: "error",
    file: at.file,
    line: at.line,
    column: at.column,
    path: "",
    message: `${count} more problems in this file are not shown`,
    hint: "fix the ones shown first; is this a lab file?",
  };
}
