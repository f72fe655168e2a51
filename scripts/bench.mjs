/**
 * `npm run bench`: how fast gen-lab starts and how it scales, measured in one run on this
 * machine, against the targets of issue 5. Prints a table; it never fails (not a test).
 *
 *   cold start      median wall time of `node bin/gen-lab.js labs/foo.yaml -o <tmp>` (and --check)
 *                   vs a bare `node -e 0`, for dist/cli.js as tsc built it and for the bundle
 *                   of scripts/bundle.mjs (built here if missing or stale)
 *   in-process      generate() over 1,000 distinct synthetic labs (after parse); parse+validate
 *                   +generate; peak RSS at 250/500/1,000 labs, each in a fresh process
 *   whole tree      1,000 lab files to disk through the CLI, and through writeTree in-process
 *
 * Options: --runs N (cold-start samples, default 11), --labs N (default 1000), --skip-bundle.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { syntheticLabs } from "./synthetic-labs.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "gen-lab.js");
const FOO = path.join(ROOT, "labs", "foo.yaml");
const SELF = fileURLToPath(import.meta.url);

const TARGETS = {
  coldRatio: 2.0,
  labsPerSecond: 2000,
  treeSeconds: 3,
};

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (x) => `${x.toFixed(0)} ms`;
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function wall(cmd, args, env = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  const elapsed = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0 && r.status !== 1)
    throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return elapsed;
}

// ---------------------------------------------------------------- child mode: in-process figures
/** `bench.mjs --child inprocess N`: parse, validate and generate N labs in this fresh process. */
async function childInProcess(n) {
  const { checkLabs, generate } = await import(
    path.join(ROOT, "dist", "index.js")
  );
  const texts = syntheticLabs(n).map((l) => ({ file: l.file, text: l.text }));
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const result = checkLabs(texts);
  const t1 = performance.now();
  if (!result.labs)
    throw new Error(
      `synthetic labs are invalid: ${JSON.stringify(result.diagnostics.slice(0, 3))}`,
    );
  const files = generate(result.labs);
  const t2 = performance.now();
  // Again, now that the JIT has seen every renderer: the steady state of a long-lived process.
  const files2 = generate(result.labs);
  const t3 = performance.now();
  let bytes = 0;
  for (const f of files) bytes += Buffer.byteLength(f.contents);
  if (files2.length !== files.length) throw new Error("nondeterministic");
  return {
    n,
    checkMs: t1 - t0,
    generateMs: t2 - t1,
    generateWarmMs: t3 - t2,
    files: files.length,
    outputBytes: bytes,
    rssBefore,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
}

/** `bench.mjs --child tree N DIR`: writeTree of N labs into DIR, in-process. */
async function childTree(n, dir) {
  const { checkLabs, generate, writeTree } = await import(
    path.join(ROOT, "dist", "index.js")
  );
  const texts = syntheticLabs(n).map((l) => ({ file: l.file, text: l.text }));
  const t0 = performance.now();
  const files = generate(checkLabs(texts).labs);
  const t1 = performance.now();
  writeTree(dir, files);
  const t2 = performance.now();
  return { generateMs: t1 - t0, writeMs: t2 - t1 };
}

if (process.argv[2] === "--child") {
  const [kind, n, dir] = process.argv.slice(3);
  const result =
    kind === "inprocess"
      ? await childInProcess(Number(n))
      : await childTree(Number(n), dir);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

function child(args) {
  const r = spawnSync(process.execPath, [SELF, "--child", ...args], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---------------------------------------------------------------- main
const runs = option("runs", 11);
const nLabs = option("labs", 1000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-bench-"));
const rows = [];
const row = (what, value, target = "", met = undefined) =>
  rows.push([what, value, target, met === undefined ? "" : met ? "yes" : "NO"]);

try {
  // Bundle (scripts/bundle.mjs) unless it is fresh or --skip-bundle.
  const bundle = path.join(ROOT, "dist", "gen-lab.cjs");
  const fresh = () =>
    fs.existsSync(bundle) &&
    fs.statSync(bundle).mtimeMs >=
      fs.statSync(path.join(ROOT, "dist", "cli.js")).mtimeMs;
  if (!process.argv.includes("--skip-bundle") && !fresh()) {
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, "scripts", "bundle.mjs")],
      {
        encoding: "utf8",
        cwd: ROOT,
      },
    );
    if (r.status !== 0) process.stderr.write(`bundle failed: ${r.stderr}\n`);
  }
  const haveBundle = fresh();

  // Cold start: interleave the variants so that machine noise hits them alike.
  const variants = [
    ["bare node -e 0", () => wall(process.execPath, ["-e", "0"])],
    [
      "gen-lab write (dist/cli.js)",
      (i) =>
        wall(process.execPath, [BIN, FOO, "-o", path.join(tmp, `esm${i}`)], {
          GEN_LAB_BUNDLE: "0",
        }),
    ],
    [
      "gen-lab --check (dist/cli.js)",
      () =>
        wall(
          process.execPath,
          [BIN, FOO, "-o", path.join(tmp, "esm0"), "--check"],
          { GEN_LAB_BUNDLE: "0" },
        ),
    ],
  ];
  if (haveBundle) {
    variants.push(
      [
        "gen-lab write (bundle+code cache)",
        (i) =>
          wall(process.execPath, [BIN, FOO, "-o", path.join(tmp, `cjs${i}`)], {
            GEN_LAB_BUNDLE: "1",
          }),
      ],
      [
        "gen-lab --check (bundle+code cache)",
        () =>
          wall(
            process.execPath,
            [BIN, FOO, "-o", path.join(tmp, "cjs0"), "--check"],
            { GEN_LAB_BUNDLE: "1" },
          ),
      ],
    );
  }
  const samples = variants.map(() => []);
  for (let i = 0; i < runs + 1; i++) {
    variants.forEach(([, f], v) => {
      const t = f(i);
      if (i > 0) samples[v].push(t); // the first round warms the page cache
    });
  }
  const bare = median(samples[0]);
  row(`cold: bare node -e 0 (median of ${runs})`, ms(bare));
  variants.slice(1).forEach(([name], v) => {
    const m = median(samples[v + 1]);
    const ratio = m / bare;
    row(
      `cold: ${name}`,
      `${ms(m)} = ${ratio.toFixed(2)}x`,
      `<= ${TARGETS.coldRatio.toFixed(1)}x`,
      ratio <= TARGETS.coldRatio,
    );
  });

  // In-process throughput and memory, each size in a fresh process.
  const sizes = [...new Set([250, 500, nLabs])].sort((a, b) => a - b);
  const mem = sizes.map((n) => child(["inprocess", String(n)]));
  const big = mem[mem.length - 1];
  const perSec = (n, t) => (n / t) * 1000;
  row(
    `in-process: generate() ${big.n} labs, first pass`,
    `${ms(big.generateMs)} = ${perSec(big.n, big.generateMs).toFixed(0)} labs/s`,
    `>= ${TARGETS.labsPerSecond} labs/s`,
    perSec(big.n, big.generateMs) >= TARGETS.labsPerSecond,
  );
  row(
    `in-process: generate() ${big.n} labs, second pass (JIT warm)`,
    `${ms(big.generateWarmMs)} = ${perSec(big.n, big.generateWarmMs).toFixed(0)} labs/s`,
    `>= ${TARGETS.labsPerSecond} labs/s`,
    perSec(big.n, big.generateWarmMs) >= TARGETS.labsPerSecond,
  );
  row(
    `in-process: parse+validate+generate ${big.n} labs`,
    `${ms(big.checkMs + big.generateMs)} = ${perSec(big.n, big.checkMs + big.generateMs).toFixed(0)} labs/s (checkLabs ${ms(big.checkMs)})`,
  );
  for (const m of mem) {
    row(
      `memory: ${m.n} labs`,
      `peak RSS ${mib(m.peakRss)}; output ${mib(m.outputBytes)} in ${m.files} files; RSS - output = ${mib(m.peakRss - m.outputBytes)}`,
    );
  }
  const first = mem[0];
  const growthPerLab = (big.peakRss - first.peakRss) / (big.n - first.n);
  const outputPerLab =
    (big.outputBytes - first.outputBytes) / (big.n - first.n);
  row(
    `memory: growth per extra lab (${first.n} -> ${big.n})`,
    `${(growthPerLab / 1024).toFixed(1)} KiB/lab vs ${(outputPerLab / 1024).toFixed(1)} KiB/lab of output (${(growthPerLab / outputPerLab).toFixed(1)}x)`,
    "flat beyond the output",
    // Flat beyond the output: each extra lab may cost its output and a little bookkeeping, no more.
    growthPerLab <= 1.5 * outputPerLab,
  );

  // Whole tree to disk.
  const labDir = path.join(tmp, "labs");
  fs.mkdirSync(labDir);
  const labFiles = syntheticLabs(nLabs).map((l) => {
    const f = path.join(labDir, l.file);
    fs.writeFileSync(f, l.text);
    return f;
  });
  const cliTree = (env, out) =>
    wall(process.execPath, [BIN, ...labFiles, "-o", out, "-q"], env);
  const treeEsm = cliTree({ GEN_LAB_BUNDLE: "0" }, path.join(tmp, "tree-esm"));
  row(
    `tree: CLI, ${nLabs} lab files -> fresh dir (dist/cli.js)`,
    ms(treeEsm),
    `< ${TARGETS.treeSeconds} s`,
    treeEsm < TARGETS.treeSeconds * 1000,
  );
  if (haveBundle) {
    const treeCjs = cliTree(
      { GEN_LAB_BUNDLE: "1" },
      path.join(tmp, "tree-cjs"),
    );
    row(
      `tree: CLI, ${nLabs} lab files -> fresh dir (bundle)`,
      ms(treeCjs),
      `< ${TARGETS.treeSeconds} s`,
      treeCjs < TARGETS.treeSeconds * 1000,
    );
    const again = cliTree({ GEN_LAB_BUNDLE: "1" }, path.join(tmp, "tree-cjs"));
    row(`tree: CLI, same ${nLabs} labs again (nothing changes)`, ms(again));
  }
  const inproc = child(["tree", String(nLabs), path.join(tmp, "tree-lib")]);
  row(
    `tree: writeTree() in-process, ${nLabs} labs (after parse+generate ${ms(inproc.generateMs)})`,
    ms(inproc.writeMs),
  );
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

// ---------------------------------------------------------------- report
const cpus = os.cpus();
process.stdout.write(
  `gen-lab bench: node ${process.version}, ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? "?"}), ${mib(os.totalmem())} RAM, ${os.platform()} ${os.release()}\n\n`,
);
const header = ["measurement", "result", "target", "met"];
const widths = header.map((h, c) =>
  Math.max(h.length, ...rows.map((r) => r[c].length)),
);
const line = (cells) =>
  `${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")}\n`;
process.stdout.write(line(header));
process.stdout.write(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) process.stdout.write(line(r));
