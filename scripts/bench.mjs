/**
 * `npm run bench`: how fast gen-lab starts and runs, on this machine. Prints a table; it never
 * fails (speed is not a test: a loaded machine is not a slow program).
 *
 *   cold start   median wall time of `node bin/gen-lab.js <3-zone lab> -o <tmp>` (and --check),
 *                runs alternated with a bare `node -e 0`, against the goal of 2.0x. Also with
 *                NODE_EXTRA_CA_CERTS unset when it is set: Node then reads the certificates at
 *                every start, which makes a bare start (the yardstick) several times slower.
 *   in process   checkLabs + generate over 30 synthetic labs (median of 7 passes in one process)
 *                and the CLI writing them, with its peak RSS: what a realistic set of labs costs.
 *
 * Options: --runs N (cold-start samples, default 21).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { syntheticLabs } from "./synthetic-labs.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin", "gen-lab.js");
const LAB = path.join(ROOT, "test", "fixtures", "openvpn-tls-egress.yaml");
const GOAL = 2.0;
const runsAt = process.argv.indexOf("--runs");
const RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 21;

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function wall(args, env) {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function coldStart(env) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-bench-"));
  const bare = [];
  const write = [];
  const check = [];
  try {
    const out = path.join(tmp, "out");
    wall([BIN, LAB, "-o", out, "-q"], env);
    for (let i = 0; i < RUNS; i++) {
      bare.push(wall(["-e", "0"], env));
      fs.rmSync(out, { recursive: true, force: true });
      write.push(wall([BIN, LAB, "-o", out, "-q"], env));
      check.push(wall([BIN, LAB, "-o", out, "--check", "-q"], env));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { bare: median(bare), write: median(write), check: median(check) };
}

function row(label, value, goal = "") {
  console.log(`${label.padEnd(58)} ${value.padEnd(22)} ${goal}`);
}

const built = path.join(ROOT, "dist", "index.js");
if (!fs.existsSync(built)) throw new Error("run `npm run build` first");
console.log(
  `gen-lab bench, ${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ${os.cpus().length} CPUs\n`,
);

const envs = [["as this machine runs node", process.env]];
if (process.env.NODE_EXTRA_CA_CERTS) {
  const { NODE_EXTRA_CA_CERTS: _, ...clean } = process.env;
  envs.push(["NODE_EXTRA_CA_CERTS unset", clean]);
}
for (const [name, env] of envs) {
  const c = coldStart(env);
  row(`cold start, 3-zone lab, ${name}: bare node`, `${c.bare.toFixed(0)} ms`);
  for (const [what, ms] of [
    ["write", c.write],
    ["--check", c.check],
  ])
    row(
      `  gen-lab ${what}`,
      `${ms.toFixed(0)} ms = ${(ms / c.bare).toFixed(2)}x`,
      `goal <= ${GOAL}x`,
    );
}

const { checkLabs, generate } = await import(pathToFileURL(built).href);
const labs = syntheticLabs(30);
const passes = [];
for (let i = 0; i < 7; i++) {
  const t = performance.now();
  const result = checkLabs(labs.map((l) => ({ file: l.file, text: l.text })));
  generate(result.labs);
  passes.push(performance.now() - t);
}
row(
  "in process: checkLabs + generate, 30 labs",
  `${median(passes).toFixed(0)} ms`,
);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-bench-"));
try {
  const files = labs.map((l) => {
    fs.writeFileSync(path.join(tmp, l.file), l.text);
    return path.join(tmp, l.file);
  });
  const r = spawnSync(
    "/usr/bin/time",
    [
      "-f",
      "%e %M",
      process.execPath,
      BIN,
      ...files,
      "-o",
      path.join(tmp, "out"),
      "-q",
    ],
    { encoding: "utf8" },
  );
  const [seconds, kib] = r.stderr.trim().split("\n").pop().split(" ");
  row(
    "CLI: 30 labs to disk",
    `${(Number(seconds) * 1000).toFixed(0)} ms, ${(Number(kib) / 1024).toFixed(0)} MiB peak RSS`,
  );
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
