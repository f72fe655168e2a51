import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { config } from "zod";
import {
  excerpt,
  fileError,
  formatDiagnostic,
  visible,
  type Diagnostic,
} from "./diagnostics.js";
import { checkTree, OutputError, writeTree, type TreeChange } from "./emit.js";
import { generate } from "./generate.js";
import { checkLabFiles, readLabFile } from "./read-labs.js";

// zod compiles each object schema into a parser with `new Function` on first use: that pays
// off after thousands of parses, and a run parses a few labs (measured: 3-4 ms of a cold
// start). The library leaves its caller's zod settings alone; only the command line sets this.
config({ jitless: true });

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, drift: 1, badInput: 2, internal: 3 } as const;

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

interface Args {
  readonly labs: readonly string[];
  readonly out: string;
  readonly check: boolean;
  readonly quiet: boolean;
}

const OPTIONS = {
  out: {
    type: "string",
    short: "o",
    describe: "output directory; each lab gets <out>/<lab>/",
  },
  check: {
    type: "boolean",
    describe:
      "write nothing; print a unified diff of what would change and exit 1 if anything would",
  },
  quiet: { type: "boolean", short: "q", describe: "print only problems" },
} as const;

/** The command line; returns the exit code. Only this module, read-labs.ts and emit.ts touch the disk. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommon(argv) ?? (await parseWithYargs(argv, io));
  return typeof args === "number" ? args : runLabs(args, io);
}

/**
 * `<labs...> -o <dir> [--check] [-q]`, what CI and scripts run, by node:util's parser: loading
 * yargs costs more than a whole run. Anything else (help, version, mistakes) goes to yargs.
 */
function parseCommon(argv: readonly string[]): Args | undefined {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      // `multiple`, so that a repeated -o is seen (and refused by yargs), not silently the last.
      options: { ...OPTIONS, out: { ...OPTIONS.out, multiple: true } },
      allowPositionals: true,
    });
    const out = values.out?.length === 1 ? values.out[0] : undefined;
    if (!out || positionals.length === 0 || positionals.includes("-"))
      return undefined;
    return {
      labs: positionals,
      out,
      check: values.check ?? false,
      quiet: values.quiet ?? false,
    };
  } catch {
    return undefined;
  }
}

async function parseWithYargs(
  argv: readonly string[],
  io: Io,
): Promise<Args | number> {
  const { default: yargs } = await import("yargs");
  let failure: string | undefined;
  let printed = "";
  const args = await yargs([...argv])
    .scriptName("gen-lab")
    .usage(
      "$0 <lab.yaml...> -o <dir> [--check]\n\nGenerate every runner, worker, cloud and pipeline file of each lab into <dir>/<lab>/.",
    )
    .command("$0 <labs..>", false)
    .positional("labs", {
      type: "string",
      array: true,
      describe: "lab files; all are validated together",
    })
    .options({
      out: { ...OPTIONS.out, alias: "o", demandOption: true },
      check: OPTIONS.check,
      quiet: { ...OPTIONS.quiet, alias: "q" },
    })
    .example("$0 labs/foo.yaml -o out/", "generate out/foo/")
    .example("$0 labs/*.yaml -o out/ --check", "fail CI when out/ is stale")
    .epilog(
      "Exit codes: 0 done (or no drift), 1 --check found drift, 2 invalid input, usage or output directory, 3 internal error.",
    )
    .version(version())
    .strict()
    .exitProcess(false)
    .fail((msg, e) => {
      failure = msg || e?.message || "invalid arguments";
    })
    .parseAsync([...argv], {}, (_e, _a, output) => {
      printed = output;
    })
    .catch((e: unknown) => {
      failure ??= String(e);
      return undefined;
    });
  if (failure !== undefined || !args) {
    io.err(
      `gen-lab: ${visible(failure ?? "invalid arguments")}\nRun gen-lab --help for usage.\n`,
    );
    return EXIT.badInput;
  }
  if (printed !== "") {
    io.out(`${printed}\n`);
    return EXIT.ok;
  }
  const out = args.out as unknown;
  if (
    typeof out !== "string" ||
    out === "" ||
    !args.labs?.length ||
    argv.includes("-")
  ) {
    io.err(
      "gen-lab: give -o <directory> once, and lab files by path (not -)\nRun gen-lab --help for usage.\n",
    );
    return EXIT.badInput;
  }
  return {
    labs: args.labs ?? [],
    out,
    check: args.check ?? false,
    quiet: args.quiet ?? false,
  };
}

function version(): string {
  const pkg = fs.readFileSync(
    new URL("../package.json", import.meta.url),
    "utf8",
  );
  return (JSON.parse(pkg) as { version: string }).version;
}

function runLabs(args: Args, io: Io): number {
  const result = checkLabFiles(args.labs);
  printDiagnostics(result.diagnostics, io);
  const labs = result.labs;
  if (!labs) {
    const errors = result.diagnostics.filter(
      (d) => d.severity === "error",
    ).length;
    io.err(`gen-lab: ${errors} error(s); nothing written.\n`);
    return EXIT.badInput;
  }
  // A lab file inside a lab directory this run replaces would be lost with it.
  const inside = args.labs.flatMap((file) => {
    const rel = path.relative(path.resolve(args.out), path.resolve(file));
    const lab = rel.split(path.sep)[0];
    return labs.some((l) => l.name === lab)
      ? [
          fileError(
            file,
            `this lab file lies in ${path.join(args.out, lab!)}, which gen-lab replaces`,
            "keep lab files outside the output directory, e.g. in labs/",
          ),
        ]
      : [];
  });
  if (inside.length > 0) {
    printDiagnostics(inside, io);
    io.err(`gen-lab: ${inside.length} error(s); nothing written.\n`);
    return EXIT.badInput;
  }
  const files = generate(labs);
  try {
    if (args.check) {
      const { changes, diff } = checkTree(args.out, files);
      const stale = changes.filter(
        (c) => c.added.length + c.changed.length + c.removed.length > 0,
      );
      if (stale.length === 0) {
        if (!args.quiet)
          io.out(
            `gen-lab: ${visible(args.out)} is up to date (${changes.length} lab(s)).\n`,
          );
        return EXIT.ok;
      }
      io.out(visible(diff, "\n\t"));
      io.err(
        `gen-lab: ${visible(args.out)} is stale: ${stale.map((c) => `${c.lab}: ${summarize(c)}`).join("; ")}. Run gen-lab without --check to update it.\n`,
      );
      return EXIT.drift;
    }
    const changes = writeTree(args.out, files);
    for (const c of changes) {
      for (const kept of c.kept)
        io.err(
          `gen-lab: warning: ${visible(`${c.lab}/${kept}`)} is no longer generated, but it was edited since gen-lab wrote it: it is kept, as your file\n`,
        );
      if (!args.quiet)
        io.out(
          `gen-lab: ${visible(path.join(args.out, c.lab))}: ${summarize(c)}\n`,
        );
    }
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof OutputError)) throw e;
    io.err(`gen-lab: ${visible(`${e.message}; ${e.hint}`)}\n`);
    return EXIT.badInput;
  }
}

function summarize(c: TreeChange): string {
  if (c.added.length + c.changed.length + c.removed.length === 0)
    return `${c.unchanged} files, unchanged`;
  return `${c.added.length} added, ${c.changed.length} changed, ${c.removed.length} removed, ${c.unchanged} unchanged`;
}

function printDiagnostics(list: readonly Diagnostic[], io: Io): void {
  const texts = new Map<string, string>();
  for (const d of list) {
    io.err(`${formatDiagnostic(d)}\n`);
    if (!texts.has(d.file)) {
      const read = readLabFile(d.file);
      texts.set(
        d.file,
        read instanceof Uint8Array ? Buffer.from(read).toString("utf8") : "",
      );
    }
    const shown = excerpt(d, texts.get(d.file)!);
    if (shown !== "") io.err(`${shown}\n`);
  }
}

/** Entry point of bin/gen-lab.js: never a stack trace for the user, unless GEN_LAB_DEBUG is set. */
export async function run(): Promise<void> {
  // A reader that went away (`| head -1`) must not turn into an unhandled error and exit code 1.
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", () => {});
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  };
  try {
    process.exitCode = await main(process.argv.slice(2), io);
  } catch (e) {
    if (process.env["GEN_LAB_DEBUG"]) throw e;
    io.err(
      `gen-lab: internal error: ${e instanceof Error ? e.message : String(e)}\n(set GEN_LAB_DEBUG=1 for details, and please report it)\n`,
    );
    process.exitCode = EXIT.internal;
  }
}
