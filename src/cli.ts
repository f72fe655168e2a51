import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { config } from "zod";
import { fileError, visible, type Diagnostic } from "./diagnostics.js";
import { checkTree, OutputError, writeTree } from "./emit.js";
import { generate } from "./render/generate.js";
import { checkLabs } from "./load.js";
import { checkLabFiles, readLabFile } from "./read-labs.js";
import { renderLabSkeleton, type TunnelType } from "./render/lab-skeleton.js";
import {
  paintDiff,
  renderReport,
  REPORT_FORMATS,
  treeCounts,
  treeFindings,
  type ReportFormat,
} from "./render/report.js";
import { VPN_TYPES } from "./schema.js";

// zod compiles each object schema into a parser with `new Function` on first use: that pays
// off after thousands of parses, and a run parses a few labs (measured: 3-4 ms of a cold
// start). The library leaves its caller's zod settings alone; only the command line sets this.
config({ jitless: true });

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, drift: 1, badInput: 2, internal: 3 } as const;

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** Colour on each stream (a terminal, and NO_COLOR unset): run() decides. */
  readonly color?: { readonly out: boolean; readonly err: boolean };
}

interface Args {
  readonly labs: readonly string[];
  readonly out: string;
  readonly check: boolean;
  readonly quiet: boolean;
  readonly format: ReportFormat;
}

interface InitArgs {
  readonly name: string;
  readonly vpn: TunnelType;
  readonly zones: readonly string[];
  readonly out: string;
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
  format: {
    type: "string",
    describe:
      "how problems are printed: text, json, gitlab (a Code Quality report) or github (workflow commands), on stdout but for text",
  },
} as const;

/** The command line; returns the exit code. Only this module, read-labs.ts and emit.ts touch the disk. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const args = parseCommon(argv) ?? (await parseWithYargs(argv, io));
  if (typeof args === "number") return args;
  return "labs" in args ? runLabs(args, io) : runInit(args, io);
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
    const format = (values.format ?? "text") as ReportFormat;
    if (
      !out ||
      positionals.length === 0 ||
      positionals.includes("-") ||
      positionals[0] === "init" ||
      !REPORT_FORMATS.includes(format)
    )
      return undefined;
    return {
      labs: positionals,
      out,
      check: values.check ?? false,
      quiet: values.quiet ?? false,
      format,
    };
  } catch {
    return undefined;
  }
}

async function parseWithYargs(
  argv: readonly string[],
  io: Io,
): Promise<Args | InitArgs | number> {
  const { default: yargs } = await import("yargs");
  let failure: string | undefined;
  let printed = "";
  let init: InitArgs | undefined;
  const args = await yargs([...argv])
    .scriptName("gen-lab")
    .usage(
      "$0 <lab.yaml...> -o <dir> [--check] [--format text|json|gitlab|github]\n$0 init <name> [--vpn openvpn|wireguard|ipsec] [--zones a,b] [-o labs]\n\nGenerate every runner, worker, cloud and pipeline file of each lab into <dir>/<lab>/.",
    )
    .command("$0 <labs..>", false, (y) =>
      y
        .positional("labs", {
          type: "string",
          array: true,
          describe: "lab files; all are validated together",
        })
        .options({
          out: { ...OPTIONS.out, alias: "o", demandOption: true },
          check: OPTIONS.check,
          quiet: { ...OPTIONS.quiet, alias: "q" },
          format: { ...OPTIONS.format, choices: REPORT_FORMATS },
        }),
    )
    .command(
      "init <name>",
      "write a new lab file, valid as it is, its placeholders marked",
      (y) =>
        y
          .positional("name", { type: "string", describe: "the lab's name" })
          .options({
            vpn: { choices: VPN_TYPES, default: "openvpn" as const },
            zones: {
              type: "string",
              default: "us-east-1a,us-east-1b",
              describe: "availability zones, one runner each",
            },
            out: { type: "string", alias: "o", default: "labs" },
          }),
      (a) => {
        init = {
          name: a.name ?? "",
          vpn: a.vpn,
          zones: a.zones.split(",").filter((z) => z !== ""),
          out: a.out,
        };
      },
    )
    .example("$0 labs/foo.yaml -o out/", "generate out/foo/")
    .example("$0 labs/*.yaml -o out/ --check", "fail CI when out/ is stale")
    .example("$0 init bar --vpn wireguard", "start labs/bar.yaml")
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
  if (init) return init;
  const out = args.out as unknown;
  const labs = (args.labs as string[] | undefined) ?? [];
  if (
    typeof out !== "string" ||
    out === "" ||
    !labs.length ||
    argv.includes("-")
  ) {
    io.err(
      "gen-lab: give -o <directory> once, and lab files by path (not -)\nRun gen-lab --help for usage.\n",
    );
    return EXIT.badInput;
  }
  return {
    labs,
    out,
    check: (args.check as boolean | undefined) ?? false,
    quiet: (args.quiet as boolean | undefined) ?? false,
    format: (args.format as ReportFormat | undefined) ?? "text",
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
  const found: Diagnostic[] = [...result.diagnostics];
  // The findings (on stderr, or as the report on stdout), then the last word: the summary, or
  // why nothing was written.
  const finish = (code: number, last: string) => {
    if (args.format !== "text") io.out(renderReport(args.format, found));
    else
      io.err(
        renderReport("text", found, sources(found, args.labs), io.color?.err),
      );
    if (code !== EXIT.ok || !args.quiet)
      (code === EXIT.ok && args.format === "text" ? io.out : io.err)(
        `gen-lab: ${visible(last)}\n`,
      );
    return code;
  };
  const labs = result.labs;
  // A lab file inside a lab directory this run replaces would be lost with it.
  const inside = args.labs.flatMap((file) => {
    const lab = path
      .relative(path.resolve(args.out), path.resolve(file))
      .split(path.sep)[0];
    return labs?.some((l) => l.name === lab)
      ? [
          fileError(
            file,
            `this lab file lies in ${path.join(args.out, lab!)}, which gen-lab replaces`,
            "keep lab files outside the output directory, e.g. in labs/",
          ),
        ]
      : [];
  });
  found.push(...inside);
  if (!labs || inside.length > 0) {
    const errors = found.filter((d) => d.severity === "error").length;
    return finish(EXIT.badInput, `${errors} error(s); nothing written.`);
  }
  const files = generate(labs);
  try {
    const checked = args.check ? checkTree(args.out, files) : undefined;
    const changes = checked?.changes ?? writeTree(args.out, files);
    const fix = `gen-lab ${args.labs.join(" ")} -o ${args.out}`;
    found.push(...treeFindings(changes, args.out, args.check, fix));
    const counts = treeCounts(changes, args.check);
    if (!args.check) return finish(EXIT.ok, `${args.out}: ${counts.text}`);
    if (!counts.stale)
      return finish(EXIT.ok, `${args.out} is up to date (${counts.text})`);
    const diff = visible(checked!.diff, "\n\t");
    if (args.format === "text") io.out(paintDiff(diff, io.color?.out));
    else io.err(diff);
    return finish(
      EXIT.drift,
      `${args.out} is stale (${counts.text}). Run gen-lab without --check to update it.`,
    );
  } catch (e) {
    if (!(e instanceof OutputError)) throw e;
    return finish(EXIT.badInput, `${e.message}; ${e.hint}`);
  }
}

/** The text of each lab file a finding is about, for the line shown under it. */
function sources(list: readonly Diagnostic[], labFiles: readonly string[]) {
  const texts = new Map<string, string>();
  for (const file of new Set(list.map((d) => d.file)))
    if (labFiles.includes(file)) {
      const read = readLabFile(file);
      if (read instanceof Uint8Array)
        texts.set(file, Buffer.from(read).toString("utf8"));
    }
  return texts;
}

/** `gen-lab init`: a new lab file, valid as it is, never over an existing one. */
function runInit(a: InitArgs, io: Io): number {
  const fail = (...why: string[]) => {
    for (const w of why) io.err(`gen-lab init: ${visible(w)}\n`);
    return EXIT.badInput;
  };
  if (a.zones.length === 0)
    return fail("give availability zones, e.g. --zones us-east-1a,us-east-1b");
  const file = path.join(a.out, `${a.name}.yaml`);
  const schema = fileURLToPath(
    new URL("../schema/lab.schema.json", import.meta.url),
  );
  const text = renderLabSkeleton({
    ...a,
    schema: path.relative(path.resolve(a.out), schema),
  });
  // The skeleton is valid for any valid name and zones: what is left are those (a bad name
  // shows in every value made from it: its own error says it all).
  const errors = checkLabs([{ file, text }]).diagnostics.filter(
    (d) => d.severity === "error",
  );
  const named = errors.filter((d) => d.path === "name");
  const wrong = named.length > 0 ? named : errors;

  if (wrong.length > 0)
    return fail(...wrong.map((d) => `${d.path}: ${d.message}; ${d.hint}`));
  try {
    fs.mkdirSync(a.out, { recursive: true });
    fs.writeFileSync(file, text, { flag: "wx", mode: 0o644 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(
      code === "EEXIST"
        ? `${file} exists; init never overwrites a lab: give another name or -o`
        : `cannot write ${file}: ${(e as Error).message}`,
    );
  }
  io.out(
    `gen-lab: wrote ${visible(file)}, a ${a.vpn} lab with a runner in each of ${a.zones.join(", ")}. Next:
  1. Replace every value marked "placeholder" with your lab's and AWS account's.
  2. gen-lab ${file} -o out/     (validates it; writes out/${a.name}/)
  3. Read out/${a.name}/README.md: where each file goes, and in which order to deploy.
`,
  );
  return EXIT.ok;
}

/** Entry point of bin/gen-lab.js: never a stack trace for the user, unless GEN_LAB_DEBUG is set. */
export async function run(): Promise<void> {
  // A reader that went away (`| head -1`) must not turn into an unhandled error and exit code 1.
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", () => {});
  // NO_COLOR (no-color.org): any value but the empty string turns colour off.
  const color = (s: NodeJS.WriteStream) =>
    s.isTTY === true &&
    !process.env["NO_COLOR"] &&
    process.env["TERM"] !== "dumb";
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    color: { out: color(process.stdout), err: color(process.stderr) },
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
