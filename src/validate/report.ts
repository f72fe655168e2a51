import type { Diagnostic, Severity } from "../diagnostics.js";
import type { LabSource, YamlPath } from "../parse.js";

/** `runners[0].vpn.port`, the way a YAML path is written in every message. */
export function formatPath(path: YamlPath): string {
  return path
    .map((step, i) =>
      typeof step === "number" ? `[${step}]` : i === 0 ? step : `.${step}`,
    )
    .join("");
}

/** Collects located diagnostics for one lab file. */
export class Reporter {
  readonly list: Diagnostic[] = [];
  constructor(readonly source: LabSource) {}

  report(
    severity: Severity,
    path: YamlPath,
    message: string,
    hint: string,
    opts: { key?: boolean } = {},
  ): void {
    const { line, column } = this.source.locate(path, opts);
    this.list.push({
      severity,
      file: this.source.file,
      line,
      column,
      path: formatPath(path),
      message,
      hint,
    });
  }
  error(
    path: YamlPath,
    message: string,
    hint: string,
    opts?: { key?: boolean },
  ): void {
    this.report("error", path, message, hint, opts);
  }
  warn(path: YamlPath, message: string, hint: string): void {
    this.report("warning", path, message, hint);
  }
  /** `file:line:col` of a node, for messages that point at a second place. */
  where(path: YamlPath): string {
    const { line, column } = this.source.locate(path);
    return `${this.source.file}:${line}:${column}`;
  }
  get failed(): boolean {
    return this.list.some((d) => d.severity === "error");
  }
}

/** Each item against every one before it; once `f` reports a clash for an item, the item is done. */
export function pairwise<T>(
  items: readonly T[],
  f: (a: T, b: T) => boolean,
): void {
  for (let j = 1; j < items.length; j++)
    for (let i = 0; i < j; i++) if (f(items[i]!, items[j]!)) break;
}
