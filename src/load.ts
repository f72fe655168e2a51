import { gzipSync } from "node:zlib";
import { LabError, sortDiagnostics, type Diagnostic } from "./diagnostics.js";
import { renderRunner } from "./render/generate.js";
import { resolveLab, type LabModel } from "./model.js";
import { parseLabText, type LabSource } from "./parse.js";
import { paths } from "./render/paths.js";
import { Reporter } from "./validate/report.js";
import { checkLab } from "./validate/lab.js";
import { checkLabSet, type CheckedLab } from "./validate/labs.js";
import { checkShape } from "./validate/shape.js";

/** The text of one lab file and the name to report it under. */
export interface LabText {
  readonly file: string;
  readonly text: string | Uint8Array;
}

/** The outcome of checking labs: models only when no error was found; warnings either way. */
export interface CheckResult {
  readonly labs: readonly LabModel[] | undefined;
  /** Errors first, then warnings, each located. */
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Parse, validate and resolve labs given together: each lab alone (document, then its rules),
 * then the rules across labs. Pure; never throws for bad input.
 */
export function checkLabs(texts: readonly LabText[]): CheckResult {
  const diagnostics: Diagnostic[] = [];
  const valid: CheckedLab[] = [];
  for (const { file, text } of texts) {
    const parsed = parseLabText(file, text);
    diagnostics.push(...parsed.diagnostics);
    if (!parsed.source) continue;
    const shape = checkShape(parsed.source);
    diagnostics.push(...shape.diagnostics);
    if (!shape.input) continue;
    const rules = checkLab(parsed.source, shape.input);
    diagnostics.push(...rules);
    if (!rules.some((d) => d.severity === "error"))
      valid.push({ source: parsed.source, input: shape.input });
  }
  diagnostics.push(...checkLabSet(valid));
  const labs = valid.map((c) => resolveLab(c.input, c.source.file));
  labs.forEach((lab, i) =>
    diagnostics.push(...checkUserData(valid[i]!.source, lab)),
  );
  const sorted = sortDiagnostics(diagnostics);
  return {
    labs: sorted.some((d) => d.severity === "error") ? undefined : labs,
    diagnostics: sorted,
  };
}

/** EC2's limit on user data, after base64 is decoded. */
export const USER_DATA_MAX = 16 * 1024;

/**
 * The rendered user data against EC2's limit: a runner's is gzipped by Terraform (Go's gzip,
 * within a few hundred bytes of Node's), a launch template's workers' is not.
 */
function checkUserData(source: LabSource, lab: LabModel): Diagnostic[] {
  const r = new Reporter(source);
  lab.runners.forEach((runner, i) => {
    const files = renderRunner(lab, runner);
    const size = (p: string) => files.find((f) => f.path === p)!.contents;
    const own = gzipSync(size(paths.runnerUserData(lab, runner))).length;
    if (own > USER_DATA_MAX - 512)
      r.error(
        ["runners", i],
        `the runner's user data would be ${own} bytes gzipped, more than EC2 takes (${USER_DATA_MAX})`,
        "shorten the egress list or the intranet's ranges and domains",
      );
    const workers = Buffer.byteLength(size(paths.workerUserData(lab, runner)));
    if (workers > USER_DATA_MAX)
      r.error(
        ["intranet", "domains"],
        `the workers' user data would be ${workers} bytes, more than EC2 takes (${USER_DATA_MAX})`,
        "list fewer routing domains: a parent domain covers its subdomains",
      );
  });
  return r.list;
}

/** Several labs given together (the rules across labs apply). Throws {@link LabError}; warnings go to `onWarning`. */
export function parseLabs(
  texts: readonly LabText[],
  onWarning?: (d: Diagnostic) => void,
): LabModel[] {
  return labsOrThrow(checkLabs(texts), onWarning);
}

/** The labs of a check, or a {@link LabError} with every diagnostic; warnings go to `onWarning`. */
export function labsOrThrow(
  { labs, diagnostics }: CheckResult,
  onWarning?: (d: Diagnostic) => void,
): LabModel[] {
  if (!labs) throw new LabError(diagnostics);
  if (onWarning) diagnostics.forEach(onWarning);
  return [...labs];
}

/** One lab from its text. Throws {@link LabError} listing every error. */
export function parseLab(
  text: string | Uint8Array,
  file = "lab.yaml",
  onWarning?: (d: Diagnostic) => void,
): LabModel {
  return parseLabs([{ file, text }], onWarning)[0]!;
}
