import "./cli-setup.js";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  excerpt,
  fileError,
  formatDiagnostic,
  visible,
  visibleLines,
  type Diagnostic,
} from "./diagnostics.js";
import {
  checkLabFiles,
  checkLabTrees,
  OutputError,
  readLabFile,
  writeLabTrees,
  type TreeChange,
} from "./emit.js";

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, drift: 1, badInput: 2, internal: 3 } as const;

interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

function version(): string {
  const pkg = JSON.parse(
    fs.readFileSync(new URL("../package.json", import.meta.url), "utf8"),
  ) as { version: string };
  return pkg.version;
}

/** Run the command line; returns the exit code. Only this module and emit.ts touch the disk. */
export async function main(
  argv: readonly string[],
  io: Io = defaultIo,
): Promise<number> {
  const simple = parseCommonArgs(argv);
  const args = simple ?? (await parseWithYargs(argv, io));
  if (typeof args === "number") return args;
  return generateFromArgs(args, io);
}

interface Args {
  labs?: string[];
  out?: string;
  check?: boolean;
  quiet?: boolean;
}

/**
 * The invocations CI and scripts use (`<labs...> -o <dir> [--check] [-q]`), parsed without
 * yargs: loading yargs and its terminal-width tables costs more than a whole run. Anything
 * else (--help, --version, unknown or repeated options, `--`) goes to yargs, so its
 * messages and rules stay the only ones users see.
 */
export function parseCommonArgs(argv: readonly string[]): Args | undefined {
  const labs: string[] = [];
  let out: string | undefined;
  let check = false;
  let quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      // Everything after `--` is a lab file, even a name that starts with `-`.
      labs.push(...argv.slice(i + 1));
      break;
    }
    if (a === "-o" || a === "--out") {
      const value = argv[i + 1];
      if (out !== undefined || value === undefined || value.startsWith("-"))
        return undefined;
      out = value;
      i++;
    } else if (a.startsWith("--out=") && out === undefined && a.length > 6) {
      out = a.slice(6);
    } else if (a === "--check" && !check) {
      check = true;
    } else if ((a === "-q" || a === "--quiet") && !quiet) {
      quiet = true;
    } else if (a.startsWith("-") || a === "") {
      return undefined;
    } else {
      labs.push(a);
    }
  }
  return labs.length > 0 && out !== undefined
    ? { labs, out, check, quiet }
    : undefined;
}

async function parseWithYargs(
  argv: readonly string[],
  io: Io,
): Promise<Args | number> {
  // yargs reads any value of a boolean flag but `true` as false: `--check=1` in a CI job would
  // write the tree and pass instead of checking it. Only true and false are taken.
  const end = argv.indexOf("--");
  for (const a of end < 0 ? argv : argv.slice(0, end)) {
    const flag = /^(--(?:no-)?(?:check|quiet)|-q)=(.*)$/s.exec(a);
    if (flag && flag[2] !== "true" && flag[2] !== "false") {
      io.err(
        `gen-lab: ${flag[1]} takes no value (got ${JSON.stringify(visible(flag[2]!))}): write ${flag[1]} alone, or leave it out\nRun gen-lab --help for usage.\n`,
      );
      return EXIT.badInput;
    }
  }
  const { default: yargs } = await import("yargs");
  let usageError: string | undefined;
  const parser = yargs([...argv])
    .scriptName("gen-lab")
    .usage(
      "$0 <lab.yaml...> -o <dir> [--check]\n\nGenerate every runner, worker, cloud and pipeline file of each lab into <dir>/<lab>/.",
    )
    .command("$0 <labs..>", false)
    .positional("labs", {
      type: "string",
      array: true,
      describe: "lab files (labs/*.yaml); all are validated together",
    })
    .option("out", {
      alias: "o",
      type: "string",
      demandOption: true,
      describe: "output directory; each lab gets <out>/<lab>/",
    })
    .option("check", {
      type: "boolean",
      default: false,
      describe:
        "write nothing; print a unified diff of what would change and exit 1 if anything would",
    })
    .option("quiet", {
      alias: "q",
      type: "boolean",
      default: false,
      describe: "print only problems",
    })
    .example("$0 labs/foo.yaml -o out/", "generate out/foo/")
    .example("$0 labs/*.yaml -o out/ --check", "fail CI when out/ is stale")
    .epilog(
      "Exit codes: 0 done (or no drift), 1 --check found drift, 2 invalid input, usage or output directory, 3 internal error.",
    )
    .version(version())
    .help()
    .strict()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, e) => {
      usageError = msg || e?.message || "invalid arguments";
    });

  let args: Args;
  let printed = "";
  try {
    args = (await parser.parseAsync([...argv], {}, (_e, _a, output) => {
      printed = output;
    })) as typeof args;
  } catch (e) {
    usageError ??= e instanceof Error ? e.message : String(e);
    args = {};
  }
  if (usageError !== undefined) {
    // `-o -dash` reads as the flags -d -a -s -h: say how to name such a directory.
    const out = argv.findIndex((a) => a === "-o" || a === "--out");
    const dashed = out >= 0 && argv[out + 1]?.startsWith("-");
    // `-x.yaml` reads as the flags -x -. -y...: a lab file named so gets the same help.
    const dashedLab = argv.find(
      (a, i) => /^-[^-].*\.ya?ml$/.test(a) && (out < 0 || i !== out + 1),
    );
    const hint = dashed
      ? `A path starting with "-" reads as options: write it as ./${visible(argv[out + 1]!)} or --out=${visible(argv[out + 1]!)}.\n`
      : dashedLab !== undefined
        ? `A path starting with "-" reads as options: write it as ./${visible(dashedLab)}, or put -- after the options, before the lab files.\n`
        : "";
    io.err(
      `gen-lab: ${visible(usageError)}\n${hint}Run gen-lab --help for usage.\n`,
    );
    return EXIT.badInput;
  }
  if (printed !== "") {
    io.out(`${printed}\n`);
    return EXIT.ok;
  }
  const stdin = argv.findIndex(
    (a, i) => a === "-" && argv[i - 1] !== "-o" && argv[i - 1] !== "--out",
  );
  if (stdin >= 0) {
    io.err(
      'gen-lab: a lab is read from a file, not from standard input ("-"): give its path\nRun gen-lab --help for usage.\n',
    );
    return EXIT.badInput;
  }
  return args;
}

function usageError(io: Io, message: string): number {
  io.err(`gen-lab: ${message}\nRun gen-lab --help for usage.\n`);
  return EXIT.badInput;
}

async function generateFromArgs(args: Args, io: Io): Promise<number> {
  if (!args.labs || args.labs.length === 0)
    return usageError(io, "give at least one lab file");
  // yargs gives an array for a repeated option, and "" for an empty or missing value: an unset
  // variable in `-o "$OUT"` must fail, not pass a --check that compared nothing.
  if (Array.isArray(args.out))
    return usageError(
      io,
      "-o/--out may be given once (-oo is -o twice; write -o o or --out=o)",
    );
  if (typeof args.out !== "string" || args.out === "")
    return usageError(io, "-o/--out needs the output directory (it is empty)");
  try {
    process.cwd(); // relative paths resolve against it
  } catch {
    return usageError(
      io,
      "the current directory no longer exists; cd to an existing one",
    );
  }
  try {
    return runLabs({ ...args, labs: args.labs, out: args.out }, io);
  } catch (e) {
    if (!(e instanceof OutputError)) throw e;
    // Paths in it come from -o: control characters must not reach the terminal.
    io.err(`gen-lab: ${visible(`${e.message}; ${e.hint}`)}\n`);
    io.err(
      args.check
        ? "gen-lab: nothing compared.\n"
        : "gen-lab: no lab was changed.\n",
    );
    return EXIT.badInput;
  }
}

/**
 * Lab files inside a lab directory that this run replaces: the file would be overwritten (or
 * removed) by the run it is the input of.
 */
function labFilesInOutput(
  files: readonly string[],
  out: string,
  labs: readonly string[],
): Diagnostic[] {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  const outReal = real(out);
  return files.flatMap((file) => {
    const rel = path.relative(outReal, real(file));
    const lab = rel.split(path.sep)[0]!;
    return rel.startsWith("..") || path.isAbsolute(rel) || !labs.includes(lab)
      ? []
      : [
          fileError(
            file,
            `this lab file lies in ${path.join(out, lab)}, which this run replaces`,
            "keep lab files outside the output directory, e.g. in labs/",
          ),
        ];
  });
}

function runLabs(args: Args & { labs: string[]; out: string }, io: Io): number {
  const result = checkLabFiles(args.labs);
  printDiagnostics(result.diagnostics, io);
  if (!result.labs) {
    const errors = result.diagnostics.filter(
      (d) => d.severity === "error",
    ).length;
    io.err(`gen-lab: ${errors} error(s); nothing written.\n`);
    return EXIT.badInput;
  }
  if (!args.check) {
    const inside = labFilesInOutput(
      args.labs,
      args.out,
      result.labs.map((l) => l.name),
    );
    if (inside.length > 0) {
      printDiagnostics(inside, io);
      io.err(`gen-lab: ${inside.length} error(s); nothing written.\n`);
      return EXIT.badInput;
    }
  }
  // Every lab is valid: render and write (or compare) a batch of labs at a time.
  if (args.check) {
    const { changes, diff } = checkLabTrees(args.out, result.labs);
    warnKept(changes, io);
    const drift = changes.filter(
      (c) => c.added.length + c.changed.length + c.removed.length > 0,
    );
    if (drift.length === 0) {
      if (!args.quiet)
        io.out(
          `gen-lab: ${visible(args.out)} is up to date (${describeLabs(changes)}).\n`,
        );
      return EXIT.ok;
    }
    // A file's text may hold anything a lab put there (terminal escapes, bidi overrides):
    // shown escaped, as diagnostics are, so a diff cannot drive the terminal or a CI log.
    io.out(visibleLines(diff));
    const named = drift
      .slice(0, NAMED_AT_MOST)
      .map((c) => `${c.lab}: ${summarize(c)}`);
    if (drift.length > NAMED_AT_MOST)
      named.push(`${drift.length - NAMED_AT_MOST} more labs`);
    io.err(
      `gen-lab: ${visible(args.out)} is stale: ${named.join("; ")}. Run gen-lab without --check to update it.\n`,
    );
    return EXIT.drift;
  }

  const changes = writeLabTrees(args.out, result.labs);
  warnKept(changes, io);
  for (const c of changes)
    if (c.leftover)
      io.err(
        `gen-lab: warning: ${c.lab} was written, but ${c.leftover}; remove it by hand, the next run needs its name\n`,
      );
  if (!args.quiet) {
    for (const c of changes)
      io.out(
        `gen-lab: ${visible(args.out.replace(/\/$/, ""))}/${c.lab}: ${summarize(c)}\n`,
      );
  }
  return EXIT.ok;
}

/**
 * Files the labs no longer make that were edited since gen-lab wrote them: kept, each named
 * (NAMED_AT_MOST, then a count), so nobody's change goes without a word.
 */
function warnKept(changes: readonly TreeChange[], io: Io): void {
  const kept = changes.flatMap((c) => c.kept ?? []);
  for (const file of kept.slice(0, NAMED_AT_MOST))
    io.err(
      `gen-lab: warning: ${visible(file)} is no longer generated, but it was edited since gen-lab wrote it (its sha256 is not the manifest's): it is kept, as your file; delete it if nothing needs it\n`,
    );
  if (kept.length > NAMED_AT_MOST)
    io.err(
      `gen-lab: warning: ${kept.length - NAMED_AT_MOST} more edited files that are no longer generated are kept\n`,
    );
}

/**
 * Labs the stale message names, and kept files the warnings name; the rest are counted (the
 * diff shows every stale lab).
 */
const NAMED_AT_MOST = 10;

function describeLabs(changes: readonly TreeChange[]): string {
  return `${changes.length} lab(s), ${changes.reduce((n, c) => n + c.unchanged, 0)} files`;
}

function summarize(c: TreeChange): string {
  const total = c.added.length + c.changed.length + c.unchanged;
  if (c.added.length + c.changed.length + c.removed.length === 0)
    return `${total} files, unchanged`;
  return `${total} files: ${c.added.length} added, ${c.changed.length} changed, ${c.removed.length} removed, ${c.unchanged} unchanged`;
}

/**
 * The text of a lab file for excerpts, or "": read as checking read it (a regular file only,
 * to the lab size cap), so no excerpt can block on a FIFO or read a proc file without end.
 */
function excerptText(file: string): string {
  const read = readLabFile(file);
  return read instanceof Uint8Array ? Buffer.from(read).toString("utf8") : "";
}

function printDiagnostics(list: readonly Diagnostic[], io: Io): void {
  const texts = new Map<string, string>();
  for (const d of list) {
    io.err(`${formatDiagnostic(d)}\n`);
    if (!texts.has(d.file)) texts.set(d.file, excerptText(d.file));
    const shown = excerpt(d, texts.get(d.file) ?? "");
    if (shown !== "") io.err(`${shown}\n`);
  }
}

/** Entry point of bin/gen-lab.js: never a stack trace for the user, unless GEN_LAB_DEBUG is set. */
/** This process's command line as the kernel holds it (Linux), or undefined elsewhere. */
function readCommandLine(): Buffer | undefined {
  try {
    return fs.readFileSync("/proc/self/cmdline");
  } catch {
    return undefined;
  }
}

/**
 * The arguments the shell passed as bytes that are not UTF-8. Node decodes argv lossily (each
 * such byte becomes U+FFFD), so a lab path would name a file that is not there and `-o` a new
 * directory beside the one meant. The kernel's copy of the command line has the bytes (its
 * last entries are the arguments); where it is missing or does not match, a U+FFFD in an
 * argument is taken for such a byte.
 */
export function nonUtf8Arguments(
  argv: readonly string[],
  commandLine: Buffer | undefined,
): string[] {
  const entries: Buffer[] = [];
  if (commandLine)
    for (let at = 0; at < commandLine.length;) {
      const end = commandLine.indexOf(0, at);
      const stop = end < 0 ? commandLine.length : end;
      entries.push(commandLine.subarray(at, stop));
      at = stop + 1;
    }
  const raw = entries.slice(entries.length - argv.length);
  const matches =
    raw.length === argv.length && raw.every((b, i) => b.toString() === argv[i]);
  const strict = new TextDecoder("utf-8", { fatal: true });
  return argv.filter((a, i) => {
    if (!a.includes("\uFFFD")) return false;
    if (!matches) return true;
    try {
      strict.decode(raw[i]);
      return false;
    } catch {
      return true;
    }
  });
}

export async function run(): Promise<void> {
  // A reader that went away (`| head -1`, a closed CI log) or a full disk behind standard
  // output or error must not end in an unhandled 'error' event: a stack trace and exit 1, the
  // drift code. What was to be said is lost; the exit code stays the run's.
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", () => {});
  try {
    const argv = process.argv.slice(2);
    const garbled = nonUtf8Arguments(argv, readCommandLine());
    if (garbled.length > 0) {
      process.stderr.write(
        garbled
          .map(
            (a) =>
              `gen-lab: the argument ${JSON.stringify(visible(a))} is not valid UTF-8 (shown with U+FFFD for each byte that is not): Node reads it as another name, so gen-lab would read or write another path than the one given; rename it to UTF-8\n`,
          )
          .join(""),
      );
      process.exitCode = EXIT.badInput;
      return;
    }
    process.exitCode = await main(argv);
  } catch (e) {
    if (process.env["GEN_LAB_DEBUG"]) throw e;
    process.stderr.write(
      `gen-lab: internal error: ${e instanceof Error ? e.message : String(e)}\n(set GEN_LAB_DEBUG=1 for details, and please report it)\n`,
    );
    process.exitCode = EXIT.internal;
  }
}
