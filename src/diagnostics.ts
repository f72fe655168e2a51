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

/** Thrown by the library when a lab (or a set of labs) is invalid: it carries every finding, not the first. */
export class LabError extends Error {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    super(
      `${errors.length} error(s) in lab input:\n${errors.map(formatDiagnostic).join("\n")}`,
    );
    this.name = "LabError";
    this.diagnostics = diagnostics;
  }
}

/** Control, format (bidi overrides, zero width) and separator characters: a lab must not drive the terminal. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** `s` with each invisible character written as `\u{85}`, so `got "prod<NEL>"` cannot read as `got "prod"`. */
export function visible(s: string, keep = ""): string {
  return s.replace(INVISIBLE, (c) =>
    keep.includes(c)
      ? c
      : `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`,
  );
}

/** `file:line:col: [warning: ]path: message; hint` — the form editors and CI logs link to. */
export function formatDiagnostic(d: Diagnostic): string {
  const kind = d.severity === "warning" ? "warning: " : "";
  const path = d.path === "" ? "" : `${d.path}: `;
  const hint = d.hint === "" ? "" : `; ${d.hint}`;
  return visible(
    `${d.file}:${d.line}:${d.column}: ${kind}${path}${d.message}${hint}`,
  );
}

/** Errors first, then by file, position and path, so output order never depends on rule order. */
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) ||
      codePointOrder(a.file, b.file) ||
      a.line - b.line ||
      a.column - b.column ||
      codePointOrder(a.path, b.path) ||
      codePointOrder(a.message, b.message),
  );
}

/** An error about a file as a whole (it cannot be read, is not a lab), at its start. */
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
