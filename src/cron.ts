/**
 * What is wrong with a schedule, and how to write it instead.
 */
export interface ScheduleProblem {
  readonly message: string;
  readonly hint: string;
}

const FIVE_FIELDS_HINT =
  'write five cron fields (minute hour day-of-month month day-of-week), e.g. "0 */4 * * *"';

/**
 * Checks a Kubernetes CronJob schedule the way the API server does: with robfig/cron v3's
 * `ParseStandard` (five fields with `*`, `?`, lists, ranges, steps, month and weekday names; or
 * a macro), after which it refuses any `TZ` because the generated CronJob sets `timeZone`.
 * Stricter than robfig where robfig is lenient by accident: no signs or leading zeros in
 * numbers, no empty list items, no step larger than the field's maximum, no whitespace around
 * the schedule, only spaces and tabs between fields (robfig splits on any Unicode space,
 * but an invisible character such as a byte order mark is not one and joins two fields), and
 * `@every` intervals in whole hours, minutes and seconds only, never zero.
 * Returns what is wrong, or undefined when the schedule is valid.
 */
export function checkSchedule(schedule: string): ScheduleProblem | undefined {
  if (schedule === "") return { message: "is empty", hint: FIVE_FIELDS_HINT };
  const odd = /[^\x21-\x7e \t]/u.exec(schedule);
  if (odd)
    return {
      message: `contains ${describeCharacter(odd[0])} at character ${odd.index + 1}; a schedule is printable ASCII with spaces or tabs between fields`,
      hint: "retype the schedule: it may have been pasted with an invisible or non-ASCII character",
    };
  if (/^[ \t]|[ \t]$/.test(schedule))
    return {
      message:
        'starts or ends with whitespace, which Kubernetes does not trim (it rejects " @hourly")',
      hint: "remove the spaces inside the quotes at the start and end of the schedule",
    };
  // The API server refuses any "TZ" (TZ=, CRON_TZ=) once the CronJob has a timeZone.
  if (schedule.includes("TZ"))
    return {
      message:
        "names a time zone (TZ), which Kubernetes refuses next to the CronJob's timeZone",
      hint: "remove TZ=...: gen-lab runs the trigger in UTC (timeZone: Etc/UTC)",
    };
  if (schedule.startsWith("@")) return checkMacro(schedule);
  const fields = schedule.split(/[ \t]+/);
  if (fields.length !== 5)
    return {
      message: `has ${fields.length} field(s), a schedule has 5`,
      hint: FIVE_FIELDS_HINT,
    };
  for (let i = 0; i < 5; i++) {
    const spec = FIELDS[i]!;
    const problem = checkField(fields[i]!, spec);
    if (problem)
      return {
        message: `has ${spec.name} field ${JSON.stringify(fields[i])}: ${problem}`,
        hint:
          spec.name === "day-of-week"
            ? "days of the week are 0-6 or sun-sat, Sunday is 0 (Kubernetes does not take 7)"
            : `${spec.name} values are ${spec.min}-${spec.max}${spec.names ? ` or ${spec.names[0]}-${spec.names[spec.names.length - 1]}` : ""}; ${FIVE_FIELDS_HINT}`,
      };
  }
  return checkDays(fields[2]!, fields[3]!, fields[4]!);
}

/** The most days each month has (February's 29 in a leap year). */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * A schedule whose days of the month fall in none of its months (`0 0 30 2 *`, `0 0 31 4,6 *`)
 * never runs. robfig/cron matches a day when both day fields match if either is `*` (or `?`,
 * or either of them unstepped), and when either matches otherwise: only with the day of the
 * week left open can the days of the month alone rule out every day.
 */
function checkDays(
  dayOfMonth: string,
  month: string,
  dayOfWeek: string,
): ScheduleProblem | undefined {
  const [days, daysStar] = expand(dayOfMonth, FIELDS[2]!);
  const [months] = expand(month, FIELDS[3]!);
  const [, weekdaysStar] = expand(dayOfWeek, FIELDS[4]!);
  if (daysStar || !weekdaysStar) return undefined;
  if (months.some((m) => days.some((d) => d <= DAYS_IN_MONTH[m - 1]!)))
    return undefined;
  return {
    message: `never runs: no month it names (${month}) has day ${dayOfMonth}`,
    hint: "pick days every named month has (1-28 for February, 1-30 for April, June, September and November)",
  };
}

/**
 * The values a valid field selects, and whether robfig marks it `*` (a `*` or `?` part
 * without a step above 1).
 */
function expand(field: string, spec: FieldSpec): [number[], boolean] {
  const values = new Set<number>();
  let star = false;
  for (const part of field.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo = spec.min;
    let hi = spec.max;
    if (range === "*" || range === "?") {
      if (step <= 1) star = true;
    } else {
      const [a, b] = range!.split("-");
      lo = value(a!, spec)!;
      // `N/step` runs from N to the field's end.
      hi =
        b !== undefined
          ? value(b, spec)!
          : stepText === undefined
            ? lo
            : spec.max;
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return [[...values], star];
}

/** robfig/cron v3's descriptors (parseDescriptor), matched as exactly as it matches them. */
const MACROS: readonly string[] = [
  "@yearly",
  "@annually",
  "@monthly",
  "@weekly",
  "@daily",
  "@midnight",
  "@hourly",
];

/**
 * A macro, or `@every <interval>`: robfig reads the interval with Go's time.ParseDuration;
 * this takes the plain part of that syntax, whole hours, minutes and seconds in that order
 * (at most six digits each, far from Go's 290-year limit).
 */
function checkMacro(schedule: string): ScheduleProblem | undefined {
  if (MACROS.includes(schedule)) return undefined;
  if (schedule === "@every" || schedule.startsWith("@every ")) {
    const m = /^@every (?=\d)((\d{1,6})h)?((\d{1,6})m)?((\d{1,6})s)?$/.exec(
      schedule,
    );
    if (!m)
      return {
        message: "has an interval that is not whole hours, minutes and seconds",
        hint: 'write @every and one space, then e.g. 6h, 90m or 1h30m ("@every 6h")',
      };
    if (Number(m[2] ?? 0) + Number(m[4] ?? 0) + Number(m[6] ?? 0) === 0)
      return {
        message:
          "has an interval of zero, which Kubernetes would run every second",
        hint: 'write the interval between runs, e.g. "@every 6h"',
      };
    return undefined;
  }
  return {
    message: `${schedule.split(/[ \t]/)[0]} is not a macro Kubernetes knows`,
    hint: `use one of ${MACROS.join(", ")}, @every <interval>, or five cron fields`,
  };
}

/** `U+FEFF (a byte order mark)`: a character the reader may not see in the schedule. */
function describeCharacter(c: string): string {
  const code = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
  if (c === "\uFEFF") return `${code} (a byte order mark)`;
  if (/\s/u.test(c)) return `${code} (whitespace other than a space or tab)`;
  if (/[\p{Cc}\p{Cf}]/u.test(c)) return `${code} (an invisible character)`;
  return `${code} (a non-ASCII character)`;
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

/** robfig/cron v3's bounds (spec.go): day-of-week is 0-6, Sunday is 0 and 7 is refused. */
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
    max: 6,
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

/** A number, or a name where the field has names (case-insensitive, as robfig lowercases). */
function value(text: string, spec: FieldSpec): number | undefined {
  const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
  if (named >= 0) return named + (spec.name === "month" ? 1 : 0);
  if (!/^\d{1,2}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= spec.min && n <= spec.max ? n : undefined;
}
