import { createHash } from "node:crypto";
import * as path from "node:path";
import {
  fileError,
  formatDiagnostic,
  visible,
  type Diagnostic,
} from "../diagnostics.js";
import type { TreeChange } from "../emit.js";

/** How `gen-lab --format` prints its findings: for people, for programs, for GitLab and GitHub CI. */
export const REPORT_FORMATS = ["text", "json", "gitlab", "github"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** The rule a finding is about, stable across runs: its YAML path without list indices. */
function checkName(d: Diagnostic): string {
  return `gen-lab/${d.path.replace(/\[\d+\]/g, "[]") || "file"}`;
}

/**
 * A finding's identity across runs: where it is (file, YAML path) and what it says, not its
 * line, so a finding does not turn "new" in a merge request because lines above it moved.
 */
function fingerprint(d: Diagnostic): string {
  return createHash("sha256")
    .update([d.severity, d.file, d.path, d.message].join("\0"))
    .digest("hex");
}

/**
 * A GitLab Code Quality report (docs.gitlab.com, "Code Quality report format"): a JSON array of
 * findings with description, check_name, fingerprint, severity and location (path, lines.begin).
 */
function codeQuality(list: readonly Diagnostic[]): string {
  const issues = list.map((d) => ({
    description: d.hint === "" ? d.message : `${d.message}; ${d.hint}`,
    check_name: checkName(d),
    fingerprint: fingerprint(d),
    severity: d.severity === "error" ? "critical" : "minor",
    location: { path: d.file, lines: { begin: d.line } },
  }));
  return `${JSON.stringify(issues, null, 2)}\n`;
}

// GitHub's workflow commands: a message escapes %, CR and LF; a property value also `:` and `,`
// (the escaping of @actions/core, which the runner undoes).
const data = (s: string) =>
  s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
const property = (s: string) =>
  data(s).replace(/:/g, "%3A").replace(/,/g, "%2C");

/** GitHub Actions annotations: `::error file=...,line=...,col=...,title=...::message`. */
function workflowCommands(list: readonly Diagnostic[]): string {
  return list
    .map((d) => {
      const where = `file=${property(d.file)},line=${d.line},col=${d.column},title=${property(checkName(d))}`;
      const text = `${d.path === "" ? "" : `${d.path}: `}${d.message}${d.hint === "" ? "" : `; ${d.hint}`}`;
      return `::${d.severity} ${where}::${data(text)}\n`;
    })
    .join("");
}

/**
 * What a write or a check found in the output tree, as findings: an edited file gen-lab no
 * longer makes (kept: a warning); with `check`, each stale file (CI reports show them where the
 * diff is not read). `fix` is the command that brings the tree up to date.
 */
export function treeFindings(
  changes: readonly TreeChange[],
  out: string,
  check: boolean,
  fix: string,
): Diagnostic[] {
  const at = (c: TreeChange, f: string) => path.join(out, c.lab, f);
  return changes.flatMap((c) => [
    ...c.kept.map((f) => ({
      ...fileError(
        at(c, f),
        "is no longer generated, but it was edited since gen-lab wrote it: it is kept, as your file",
        "delete it if you do not need it",
      ),
      severity: "warning" as const,
    })),
    ...(check
      ? ([
          ["missing", c.added],
          ["out of date", c.changed],
          ["no longer generated", c.removed],
        ] as const)
      : []
    ).flatMap(([kind, list]) =>
      list.map((f) =>
        fileError(
          at(c, f),
          `is ${kind}: the output is stale`,
          `run ${fix} and commit the result`,
        ),
      ),
    ),
  ]);
}

/** A run's counts: labs, files written (or to write), unchanged, removed (or to remove). */
export function treeCounts(changes: readonly TreeChange[], check: boolean) {
  const sum = (k: "added" | "changed" | "removed") =>
    changes.reduce((n, c) => n + c[k].length, 0);
  const [write, remove] = check
    ? ["to write", "to remove"]
    : ["written", "removed"];
  return {
    stale: sum("added") + sum("changed") + sum("removed") > 0,
    text: `${changes.length} lab(s): ${sum("added") + sum("changed")} ${write}, ${changes.reduce((n, c) => n + c.unchanged, 0)} unchanged, ${sum("removed")} ${remove}`,
  };
}

/** ANSI colour, when `on`. */
export const paint = (on: boolean | undefined, code: number, s: string) =>
  on ? `\u001b[${code}m${s}\u001b[0m` : s;

/** A unified diff, its added lines green and removed ones red, when `color`. */
export function paintDiff(diff: string, color: boolean | undefined): string {
  if (!color) return diff;
  return diff.replace(/^([-+@]).*$/gm, (line, c: string) =>
    /^(\+\+\+|---) /.test(line)
      ? paint(true, 1, line)
      : paint(true, c === "+" ? 32 : c === "-" ? 31 : 36, line),
  );
}

/** The source line of a diagnostic with a caret under its column, for humans (netplan style). */
export function excerpt(d: Diagnostic, text: string): string {
  const line = text.split(/\r?\n/)[d.line - 1];
  if (line === undefined || line.trim() === "" || line.length > 200) return "";
  const shown = (s: string) => visible(s.replace(/\t/g, " "));
  const before = shown(line.slice(0, Math.max(0, d.column - 1)));
  return `  ${shown(line)}\n  ${" ".repeat(before.length)}^`;
}

/**
 * The findings of a run in `format`. Text, for people: one `file:line:col: ...` line each (red
 * for an error, yellow for a warning, when `color`), under it the line of the lab file it is
 * about, from `sources`.
 */
export function renderReport(
  format: ReportFormat,
  list: readonly Diagnostic[],
  sources: ReadonlyMap<string, string> = new Map(),
  color = false,
): string {
  switch (format) {
    case "json":
      return `${JSON.stringify(list, null, 2)}\n`;
    case "gitlab":
      return codeQuality(list);
    case "github":
      return workflowCommands(list);
    case "text":
      return list
        .map((d) => {
          const line = paint(
            color,
            d.severity === "error" ? 31 : 33,
            formatDiagnostic(d),
          );
          const shown = sources.has(d.file)
            ? excerpt(d, sources.get(d.file)!)
            : "";
          return `${line}\n${shown === "" ? "" : `${shown}\n`}`;
        })
        .join("");
  }
}
