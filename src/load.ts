import {
  fileError,
  LabError,
  sortDiagnostics,
  type Diagnostic,
} from "./diagnostics.js";
import { resolveLab, sealModel, type LabModel } from "./model.js";
import { parseLabSource } from "./source.js";
import {
  checkLab,
  checkLabSet,
  checkShape,
  type CheckedLab,
} from "./validate.js";

/** The text of one lab file and the name to report it under. */
export interface LabText {
  readonly file: string;
  readonly text: string | Uint8Array;
}

/** The outcome of checking labs: models only when no error was found; warnings either way. */
export interface CheckResult {
  readonly labs: readonly LabModel[] | undefined;
  /** Errors and warnings, errors first, each located. */
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Parse, validate and resolve a set of labs given together: every lab alone, then the
 * cross-lab rules. Pure: no file system, clock or environment. Never throws for bad input.
 */
export function checkLabs(texts: readonly LabText[]): CheckResult {
  if (!Array.isArray(texts))
    return {
      labs: undefined,
      diagnostics: [
        misuse(
          "labs",
          `checkLabs was given ${describe(texts)}, not an array of labs`,
        ),
      ],
    };
  const diagnostics: Diagnostic[] = [];
  const checked: CheckedLab[] = [];
  for (let i = 0; i < texts.length; i++) {
    const entry: unknown = texts[i];
    const bad = notLabText(entry, i);
    if (bad) {
      diagnostics.push(bad);
      continue;
    }
    const { file, text } = entry as LabText;
    if (/[\p{Cc}\p{Zl}\p{Zp}]/u.test(file)) {
      diagnostics.push(
        fileError(
          JSON.stringify(file),
          "the lab file's name contains control or line-break characters",
          "rename the file, e.g. labs/<lab name>.yaml: its name is written into every generated file's header",
        ),
      );
      continue;
    }
    const parsed = parseLabSource(file, text);
    if (!parsed.ok) {
      for (const d of parsed.diagnostics) diagnostics.push(d);
      continue;
    }
    const shape = checkShape(parsed.source);
    for (const d of shape.diagnostics) diagnostics.push(d);
    if (!shape.input) continue;
    const rules = checkLab(parsed.source, shape.input);
    for (const d of rules) diagnostics.push(d);
    // The cross-lab rules only need the text and the input; the tree can go.
    parsed.source.compact();
    if (!rules.some((d) => d.severity === "error"))
      checked.push({ source: parsed.source, input: shape.input });
  }
  for (const d of checkLabSet(checked)) diagnostics.push(d);
  const sorted = sortDiagnostics(diagnostics);
  if (sorted.some((d) => d.severity === "error"))
    return { labs: undefined, diagnostics: sorted };
  // One object for the labs checked together: only such labs are rendered together.
  const set = {};
  return {
    labs: checked.map((c) =>
      sealModel(resolveLab(c.input, c.source.file), set),
    ),
    diagnostics: sorted,
  };
}

/** What a value a caller passed is, for a message: `null`, `a number`, `an array`... */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? "an" : "a"} ${type}`;
}

/** A library caller's argument that is no lab text. */
function misuse(file: string, message: string): Diagnostic {
  return fileError(
    file,
    message,
    "pass each lab as { file: the name to report it under, text: its contents as a string or a Uint8Array }",
  );
}

/** Why the i-th entry given to checkLabs is not a {@link LabText}, if it is not. */
function notLabText(entry: unknown, i: number): Diagnostic | undefined {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry))
    return misuse(
      `labs[${i}]`,
      `the lab is ${describe(entry)}, not { file, text }`,
    );
  const { file, text } = entry as Record<string, unknown>;
  if (typeof file !== "string")
    return misuse(
      `labs[${i}]`,
      `the lab's file is ${describe(file)}, not a string`,
    );
  if (file === "")
    return misuse(
      `labs[${i}]`,
      "the lab's file is an empty string: it names the lab in messages and in the header of every file made from it",
    );
  if (typeof text !== "string" && !(text instanceof Uint8Array))
    return misuse(
      /[\p{Cc}\p{Zl}\p{Zp}]/u.test(file) ? JSON.stringify(file) : file,
      `the lab's text is ${describe(text)}, not a string or a Uint8Array`,
    );
  return undefined;
}

/**
 * Parse one lab from its text. Throws {@link LabError} listing every error; warnings are
 * passed to `onWarning` when given.
 */
export function parseLab(
  text: string | Uint8Array,
  file = "lab.yaml",
  onWarning?: (d: Diagnostic) => void,
): LabModel {
  const [lab] = parseLabs([{ file, text }], onWarning);
  return lab!;
}

/** Parse several labs given together (cross-lab rules apply). Throws {@link LabError}. */
export function parseLabs(
  texts: readonly LabText[],
  onWarning?: (d: Diagnostic) => void,
): LabModel[] {
  return labsOrThrow(checkLabs(texts), onWarning);
}

/** The labs of a check, or a {@link LabError} with every diagnostic; warnings go to `onWarning`. */
export function labsOrThrow(
  result: CheckResult,
  onWarning?: (d: Diagnostic) => void,
): LabModel[] {
  if (!result.labs) throw new LabError(result.diagnostics);
  if (onWarning) result.diagnostics.forEach(onWarning);
  return [...result.labs];
}
