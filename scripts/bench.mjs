/**
 * `npm run bench`: how fast gen-lab starts and how it scales, measured in one run on this
 * machine, against the targets of issue 5. Prints a table; it never fails (not a test).
 *
 *   in-process      generate() over 1,000 distinct synthetic labs (after parse): the first pass
 *                   of 3 fresh processes and 5 later passes of each (medians); parse+validate
 *                   +generate; heap kept and peak RSS at 250/500/1,000/2,000 labs, each in a
 *                   fresh process. Measured first, before the run writes anything to disk.
 *   cold start      median wall time of `node bin/gen-lab.js labs/foo.yaml -o <tmp>` (and --check)
 *                   vs a bare `node -e 0`, for dist/cli.js as tsc built it and for the bundle
 *                   of scripts/bundle.mjs (built here if missing or stale)
 *   whole tree      1,000 lab files to disk through the CLI (median of 3; again; --check), the
 *                   CLI's peak RSS at 250, 1,000 and 2,000 labs, and writeTree in-process
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

/**
 * A fixed CPU-bound workload (integer arithmetic and JSON), median of 5: how fast this machine
 * is at the moment. A shared VM's speed drifts by tens of percent within an hour, so two bench
 * runs compare only alongside this figure.
 */
function referenceMs() {
  const samples = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    let x = 0;
    for (let i = 0; i < 3e7; i++) x = (x + i * 31) % 1000003;
    const json = JSON.stringify(
      Array.from({ length: 20000 }, (_, i) => ({ i, s: `v${i}` })),
    );
    samples.push(performance.now() - t);
    if (x < 0 || json.length === 0) throw new Error("unreachable");
  }
  return median(samples);
}

// ---------------------------------------------------------------- child mode: in-process figures
/**
 * `bench.mjs --child speed N`: parse, validate and generate N labs in this fresh process (the
 * first pass, which includes the JIT's warm-up), then generate again WARM_PASSES times, each
 * output dropped before the next, as a long-lived caller would (the steady state).
 */
const WARM_PASSES = 5;
async function childSpeed(n) {
  const { checkLabs, generate } = await import(
    path.join(ROOT, "dist", "index.js")
  );
  const texts = syntheticLabs(n).map((l) => ({ file: l.file, text: l.text }));
  const t0 = performance.now();
  const result = checkLabs(texts);
  const t1 = performance.now();
  // Clean labs: a warning's message is located by the reference YAML reader, a cost only
  // labs with something to report pay (see the README).
  if (!result.labs || result.diagnostics.length > 0)
    throw new Error(
      `synthetic labs are not clean: ${JSON.stringify(result.diagnostics.slice(0, 3))}`,
    );
  let files = generate(result.labs);
  const t2 = performance.now();
  const count = files.length;
  const warmMs = [];
  for (let i = 0; i < WARM_PASSES; i++) {
    files = undefined;
    const t = performance.now();
    files = generate(result.labs);
    warmMs.push(performance.now() - t);
    if (files.length !== count) throw new Error("nondeterministic");
  }
  return { n, checkMs: t1 - t0, generateMs: t2 - t1, warmMs };
}

/**
 * `bench.mjs --child memory N` (run with --expose-gc): memory of parse, validate and generate
 * of N labs, output kept, as the CLI holds it before writing. Peak RSS is what the machine
 * sees; the heap after a full GC is what the run really keeps (V8 collects lazily, so the peak
 * also holds garbage not yet collected).
 */
async function childMemory(n) {
  const { checkLabs, generate } = await import(
    path.join(ROOT, "dist", "index.js")
  );
  const texts = syntheticLabs(n).map((l) => ({ file: l.file, text: l.text }));
  globalThis.gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const files = generate(checkLabs(texts).labs);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  globalThis.gc();
  const heapKept = process.memoryUsage().heapUsed - heapBefore;
  let bytes = 0;
  for (const f of files) bytes += Buffer.byteLength(f.contents);
  return { n, files: files.length, outputBytes: bytes, peakRss, heapKept };
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
    kind === "speed"
      ? await childSpeed(Number(n))
      : kind === "memory"
        ? await childMemory(Number(n))
        : await childTree(Number(n), dir);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

function child(args, nodeFlags = []) {
  const flags = [
    ...(args[0] === "memory" ? ["--expose-gc"] : []),
    ...nodeFlags,
  ];
  const r = spawnSync(process.execPath, [...flags, SELF, "--child", ...args], {
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

const referenceBefore = referenceMs();
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

  // In-process throughput, then memory at several sizes, each in a fresh process. First, before
  // this run has written anything: the kernel's writeback of the later phases' files would
  // compete for this machine's CPUs.
  const perSec = (n, t) => (n / t) * 1000;
  // Three fresh processes: the medians of their first passes, and of all their warm passes.
  const speeds = [0, 1, 2].map(() => child(["speed", String(nLabs)]));
  const firstPass = median(speeds.map((s) => s.generateMs));
  const warm = median(speeds.flatMap((s) => s.warmMs));
  const check = median(speeds.map((s) => s.checkMs));
  row(
    `in-process: generate() ${nLabs} labs, first pass in a fresh process (median of 3)`,
    `${ms(firstPass)} = ${perSec(nLabs, firstPass).toFixed(0)} labs/s`,
    `>= ${TARGETS.labsPerSecond} labs/s`,
    perSec(nLabs, firstPass) >= TARGETS.labsPerSecond,
  );
  row(
    `in-process: generate() ${nLabs} labs, steady state (median of ${speeds.length * WARM_PASSES} later passes)`,
    `${ms(warm)} = ${perSec(nLabs, warm).toFixed(0)} labs/s`,
    `>= ${TARGETS.labsPerSecond} labs/s`,
    perSec(nLabs, warm) >= TARGETS.labsPerSecond,
  );
  // Node starts V8 with 4 worker threads whatever the CPUs. On a 2-CPU machine they compete
  // with the main thread while V8 optimizes the code of a first pass; `--v8-pool-size=0`
  // lets Node size the pool by the CPUs. A setting of the host process, not of gen-lab.
  const sizedPool = median(
    [0, 1, 2].map(
      () => child(["speed", String(nLabs)], ["--v8-pool-size=0"]).generateMs,
    ),
  );
  row(
    `in-process: the same first pass, node --v8-pool-size=0 (${os.availableParallelism()} CPUs)`,
    `${ms(sizedPool)} = ${perSec(nLabs, sizedPool).toFixed(0)} labs/s`,
  );
  row(
    `in-process: parse+validate+generate ${nLabs} labs, fresh process`,
    `${ms(check + firstPass)} = ${perSec(nLabs, check + firstPass).toFixed(0)} labs/s (checkLabs ${ms(check)})`,
  );
  const sizes = [...new Set([250, 500, nLabs, 2 * nLabs])].sort(
    (a, b) => a - b,
  );
  const mem = sizes.map((n) => child(["memory", String(n)]));
  for (const m of mem) {
    row(
      `memory: ${m.n} labs, output kept`,
      `peak RSS ${mib(m.peakRss)}; heap kept ${mib(m.heapKept)}; output ${mib(m.outputBytes)} in ${m.files} files`,
    );
  }
  // Flat beyond the output: each extra lab may cost its output and a little bookkeeping, no
  // more. Judged on the slope between the smallest and the largest run, so what every run
  // pays once (node, the code, the JIT) cancels out.
  const first = mem[0];
  const last = mem[mem.length - 1];
  const slope = (key) => (last[key] - first[key]) / (last.n - first.n);
  const outputPerLab = slope("outputBytes");
  for (const [key, what] of [
    ["heapKept", "heap kept"],
    ["peakRss", "peak RSS"],
  ]) {
    const perLab = slope(key);
    row(
      `memory: ${what} per extra lab (${first.n} -> ${last.n} labs)`,
      `${(perLab / 1024).toFixed(1)} KiB/lab vs ${(outputPerLab / 1024).toFixed(1)} KiB/lab of output (${(perLab / outputPerLab).toFixed(2)}x)`,
      "<= 1.5x the output",
      perLab <= 1.5 * outputPerLab,
    );
  }

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

  // Whole tree to disk. The CLI's peak RSS comes from a preloaded module that writes it at exit.
  const rssProbe = path.join(tmp, "rss-probe.cjs");
  fs.writeFileSync(
    rssProbe,
    'process.on("exit", () => require("node:fs").writeFileSync(process.env.GEN_LAB_BENCH_RSS, String(process.resourceUsage().maxRSS * 1024)));\n',
  );
  const rssFile = path.join(tmp, "rss");
  const writeLabs = (n, dir) => {
    fs.mkdirSync(dir);
    return syntheticLabs(n).map((l) => {
      const f = path.join(dir, l.file);
      fs.writeFileSync(f, l.text);
      return f;
    });
  };
  const labFiles = writeLabs(nLabs, path.join(tmp, "labs"));
  const fewLabs = Math.max(1, nLabs >> 2);
  const fewLabFiles = writeLabs(fewLabs, path.join(tmp, "few-labs"));
  let outs = 0;
  const cliTree = (
    files,
    env,
    out = path.join(tmp, `tree-${outs++}`),
    extra = [],
  ) => {
    const t = wall(
      process.execPath,
      ["--require", rssProbe, BIN, ...files, "-o", out, "-q", ...extra],
      { GEN_LAB_BENCH_RSS: rssFile, ...env },
    );
    return { ms: t, rss: Number(fs.readFileSync(rssFile, "utf8")), out };
  };
  const treeEsm = cliTree(labFiles, { GEN_LAB_BUNDLE: "0" });
  row(
    `tree: CLI, ${nLabs} lab files -> fresh dir (dist/cli.js)`,
    ms(treeEsm.ms),
    `< ${TARGETS.treeSeconds} s`,
    treeEsm.ms < TARGETS.treeSeconds * 1000,
  );
  if (haveBundle) {
    // The disk is the noisiest part of the machine: the median of three fresh trees.
    const fresh = [0, 1, 2].map(() =>
      cliTree(labFiles, { GEN_LAB_BUNDLE: "1" }),
    );
    const treeCjs = median(fresh.map((r) => r.ms));
    row(
      `tree: CLI, ${nLabs} lab files -> fresh dir (bundle, median of 3)`,
      `${ms(treeCjs)} (${fresh.map((r) => ms(r.ms)).join(", ")})`,
      `< ${TARGETS.treeSeconds} s`,
      treeCjs < TARGETS.treeSeconds * 1000,
    );
    const again = cliTree(labFiles, { GEN_LAB_BUNDLE: "1" }, fresh[0].out);
    row(`tree: CLI, same ${nLabs} labs again (nothing changes)`, ms(again.ms));
    const check = cliTree(labFiles, { GEN_LAB_BUNDLE: "1" }, fresh[0].out, [
      "--check",
    ]);
    row(`tree: CLI --check, ${nLabs} labs up to date`, ms(check.ms));
    // The CLI renders and writes 32 labs at a time: its memory should not grow with the output.
    // Its first few hundred labs grow V8's young generation to its full size (tens of MiB,
    // once), so the cost of each further lab is the slope over the last doubling.
    const few = cliTree(fewLabFiles, { GEN_LAB_BUNDLE: "1" });
    const moreLabFiles = writeLabs(2 * nLabs, path.join(tmp, "more-labs"));
    const more = cliTree(moreLabFiles, { GEN_LAB_BUNDLE: "1" });
    const outputPerLab = slope("outputBytes");
    const perLab = (more.rss - fresh[0].rss) / nLabs;
    const early = (fresh[0].rss - few.rss) / (nLabs - fewLabs);
    row(
      `memory: CLI peak RSS, ${fewLabs} -> ${nLabs} -> ${2 * nLabs} labs to disk`,
      `${mib(few.rss)} -> ${mib(fresh[0].rss)} -> ${mib(more.rss)}: ${(perLab / 1024).toFixed(1)} KiB/lab over the last doubling vs ${(outputPerLab / 1024).toFixed(1)} KiB/lab of output (${(perLab / outputPerLab).toFixed(2)}x; ${(early / outputPerLab).toFixed(2)}x from ${fewLabs} to ${nLabs})`,
      "<= 1.5x the output",
      perLab <= 1.5 * outputPerLab,
    );
  }
  const inproc = child(["tree", String(nLabs), path.join(tmp, "tree-lib")]);
  row(
    `tree: writeTree() in-process, ${nLabs} labs (after parse+generate ${ms(inproc.generateMs)})`,
    ms(inproc.writeMs),
  );
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
const referenceAfter = referenceMs();

// ---------------------------------------------------------------- report
const cpus = os.cpus();
process.stdout.write(
  `gen-lab bench: node ${process.version}, ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? "?"}), ${mib(os.totalmem())} RAM, ${os.platform()} ${os.release()}\n` +
    `machine speed reference (fixed JS workload, lower is faster): ${ms(referenceBefore)} at the start, ${ms(referenceAfter)} at the end\n\n`,
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
