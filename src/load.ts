import { LabError, sortDiagnostics, type Diagnostic } from "./diagnostics.js";
import { resolveLab, type LabModel } from "./model.js";
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
  const diagnostics: Diagnostic[] = [];
  const checked: CheckedLab[] = [];
  for (const { file, text } of texts) {
    if (/[\p{Cc}\p{Zl}\p{Zp}]/u.test(file)) {
      diagnostics.push({
        severity: "error",
        file: JSON.stringify(file),
        line: 1,
        column: 1,
        path: "",
        message:
          "the lab file's name contains control or line-break characters",
        hint: "rename the file, e.g. labs/<lab name>.yaml: its name is written into every generated file's header",
      });
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
  return {
    labs: checked.map((c) => resolveLab(c.input, c.source.file)),
    diagnostics: sorted,
  };
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
