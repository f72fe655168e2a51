/**
 * Checks a Kubernetes CronJob schedule: five fields (minute hour day-of-month month day-of-week)
 * with `*`, lists, ranges and steps, month and weekday names; or one of the standard macros.
 * Returns what is wrong, or undefined when the schedule is valid.
 */
export function checkSchedule(schedule: string): string | undefined {
  const trimmed = schedule.trim();
  if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(trimmed))
    return undefined;
  if (trimmed.startsWith("@")) return `unknown macro ${trimmed}`;
  if (/^(CRON_)?TZ=/.test(trimmed))
    return "time zones in the schedule are not supported; use the CronJob timeZone instead";
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 5)
    return `has ${fields.length} field(s), a schedule has 5`;
  for (let i = 0; i < 5; i++) {
    const problem = checkField(fields[i]!, FIELDS[i]!);
    if (problem)
      return `${FIELDS[i]!.name} field ${JSON.stringify(fields[i])}: ${problem}`;
  }
  return undefined;
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  {
    name: "month",
    min: 1,
    max: 12,
    names: [
      "jan",
      "feb",
      "mar",
      "apr",
      "may",
      "jun",
      "jul",
      "aug",
      "sep",
      "oct",
      "nov",
      "dec",
    ],
  },
  {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
  },
];

function checkField(field: string, spec: FieldSpec): string | undefined {
  for (const part of field.split(",")) {
    const m = /^(\*|\?|[^/-]+(?:-[^/-]+)?)(?:\/(\d+))?$/.exec(part);
    if (!m) return `${JSON.stringify(part)} is not a value, range or step`;
    const [, range, step] = m;
    if (step !== undefined && (Number(step) < 1 || Number(step) > spec.max))
      return `step ${step} is out of range`;
    if (range === "*" || range === "?") continue;
    const [lo, hi] = range!.split("-");
    const a = value(lo!, spec);
    if (a === undefined)
      return `${lo} is not between ${spec.min} and ${spec.max}`;
    if (hi !== undefined) {
      const b = value(hi, spec);
      if (b === undefined)
        return `${hi} is not between ${spec.min} and ${spec.max}`;
      if (b < a) return `range ${lo}-${hi} runs backwards`;
    }
  }
  return undefined;
}

function value(text: string, spec: FieldSpec): number | undefined {
  const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named >= 0) return named + (spec.name === "month" ? 1 : 0);
  if (!/^\d{1,2}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= spec.min && n <= spec.max ? n : undefined;
}
