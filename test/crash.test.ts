/**
 * A writer killed at any moment leaves each lab directory exactly as it was or exactly as
 * the new run makes it, never a mix: gen-lab builds `<out>/.<lab>.gen-lab-new` and swaps it
 * in with two renames. A kill between the two renames leaves `<lab>` missing and the old
 * tree intact at `.<lab>.gen-lab-old`, which the next run (recoverInterrupted) puts back.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { recoverInterrupted } from "../src/index.js";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { BIN, readTree, runCli } from "./helpers.js";

/**
 * 100 labs (~1,800 files) keep this file near 30 s on a 2-core machine; GEN_LAB_CRASH_LABS=200
 * for a longer run. The trees live on tmpfs when there is one: on this project's CI disk a
 * file create costs ~0.75 ms, which would make the test about the disk, not the swap.
 */
const LABS = Number(process.env["GEN_LAB_CRASH_LABS"] ?? 100);
const ITERATIONS = 15;

type Tree = Map<string, { mode: number; contents: string }>;

function sameTree(a: Tree, b: Tree): boolean {
  if (a.size !== b.size) return false;
  for (const [p, f] of a) {
    const g = b.get(p);
    if (!g || g.mode !== f.mode || g.contents !== f.contents) return false;
  }
  return true;
}

/** Lab files of both versions: the new one changes every lab's keyfiles (another nameserver). */
function writeLabs(dir: string, nameserverHost: number): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return syntheticLabs(LABS, { nameserverHost }).map((l) => {
    const file = path.join(dir, l.file);
    fs.writeFileSync(file, l.text);
    return file;
  });
}

/**
 * Run the CLI writing into `out` and SIGKILL it `delayMs` after its first staging directory
 * appears (start-up and validation write nothing, so kills before that prove little).
 * Resolves with how it ended and when writing started (ms after the spawn).
 */
function runAndKill(
  args: string[],
  out: string,
  delayMs: number,
): Promise<{ killed: boolean; writeStartMs: number | undefined }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let writeStartMs: number | undefined;
    const child = spawn(process.execPath, [BIN, ...args], { stdio: "ignore" });
    let timer: NodeJS.Timeout | undefined;
    const poll = setInterval(() => {
      let staging = false;
      try {
        staging = fs.readdirSync(out).some((e) => e.endsWith(".gen-lab-new"));
      } catch {
        staging = false;
      }
      if (!staging) return;
      clearInterval(poll);
      writeStartMs = Date.now() - started;
      timer = setTimeout(() => child.kill("SIGKILL"), delayMs);
    }, 5);
    child.on("exit", (_code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve({ killed: signal === "SIGKILL", writeStartMs });
    });
  });
}

const shm = "/dev/shm";
const root = fs.mkdtempSync(
  path.join(
    process.env["GEN_LAB_CRASH_DIR"] ??
      (fs.existsSync(shm) ? shm : os.tmpdir()),
    "gen-lab-crash-",
  ),
);
const cleanup = () => fs.rmSync(root, { recursive: true, force: true });
const oldLabs = writeLabs(path.join(root, "labs-old"), 53);
const newLabs = writeLabs(path.join(root, "labs-new"), 54);
const names = syntheticLabs(LABS).map((l) => l.name);
const oldOut = path.join(root, "expected-old");
const newOut = path.join(root, "expected-new");
let oldTrees: Map<string, Tree>;
let newTrees: Map<string, Tree>;
let fullRunMs = 0;
let writeMs = 0;

test.before(async () => {
  assert.is(runCli([...oldLabs, "-o", oldOut, "-q"]).status, 0);
  // The expected new tree is written over the old one, as in the iterations below.
  fs.cpSync(oldOut, newOut, { recursive: true });
  const t = Date.now();
  const { killed, writeStartMs } = await runAndKill(
    [...newLabs, "-o", newOut, "-q"],
    newOut,
    1e9,
  );
  fullRunMs = Date.now() - t;
  assert.not.ok(killed);
  writeMs = fullRunMs - (writeStartMs ?? 0);
  oldTrees = new Map(names.map((n) => [n, readTree(path.join(oldOut, n))]));
  newTrees = new Map(names.map((n) => [n, readTree(path.join(newOut, n))]));
  for (const n of names)
    assert.not.ok(
      sameTree(oldTrees.get(n)!, newTrees.get(n)!),
      `lab ${n} changes between the versions`,
    );
});

test.after(cleanup);

test(`SIGKILL at random moments (${ITERATIONS} runs of ${LABS} labs): every lab is the old or the new tree`, async () => {
  const seen = { old: 0, new: 0, betweenRenames: 0, staging: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const out = path.join(root, `out${i}`);
    fs.cpSync(oldOut, out, { recursive: true });
    // Spread the kills over the writing phase, and a little beyond its usual end.
    const delay = Math.round(writeMs * 1.1 * Math.random());
    await runAndKill([...newLabs, "-o", out, "-q"], out, delay);

    const entries = new Set(fs.readdirSync(out));
    // A killed run's lock, or its draft: its process is gone, so the next run removes them.
    for (const e of entries)
      if (/^\.gen-lab\.lock(?:\.\d+(?:\.new)?)?$/.test(e)) entries.delete(e);
    const betweenRenames: string[] = [];
    for (const n of names) {
      entries.delete(n);
      entries.delete(`.${n}.gen-lab-new`);
      entries.delete(`.${n}.gen-lab-old`);
      if (fs.existsSync(path.join(out, `.${n}.gen-lab-new`))) seen.staging++;
      const dir = path.join(out, n);
      if (!fs.existsSync(dir)) {
        // Killed between `<lab> -> .<lab>.gen-lab-old` and `new -> <lab>`.
        const old = readTree(path.join(out, `.${n}.gen-lab-old`));
        assert.ok(
          sameTree(old, oldTrees.get(n)!),
          `run ${i}, lab ${n}: missing, and .${n}.gen-lab-old is not the old tree`,
        );
        betweenRenames.push(n);
        continue;
      }
      const tree = readTree(dir);
      if (sameTree(tree, oldTrees.get(n)!)) seen.old++;
      else if (sameTree(tree, newTrees.get(n)!)) seen.new++;
      else
        assert.unreachable(
          `run ${i} (killed after ${delay} ms), lab ${n}: neither the old nor the new tree`,
        );
    }
    assert.equal(
      [...entries],
      [],
      `run ${i}: unexpected entries in the output`,
    );
    seen.betweenRenames += betweenRenames.length;

    // The next run's recovery puts a set-aside tree back and drops unfinished ones.
    for (const n of names) recoverInterrupted(out, n);
    for (const n of betweenRenames)
      assert.ok(
        sameTree(readTree(path.join(out, n)), oldTrees.get(n)!),
        `run ${i}, lab ${n}: restored to the old tree`,
      );
    assert.equal(
      fs
        .readdirSync(out)
        .filter((e) => e.startsWith(".") && !e.startsWith(".gen-lab.lock")),
      [],
      `run ${i}: recovery leaves no staging or set-aside directories`,
    );
    // Twice: a complete run afterwards makes the new tree.
    if (i % 7 === 6) {
      const r = runCli([...newLabs, "-o", out, "-q"]);
      assert.is(r.status, 0, r.stderr);
      assert.equal(
        fs.readdirSync(out).filter((e) => e.startsWith(".gen-lab.lock")),
        [],
        `run ${i}: a complete run releases the lock and removes dead drafts`,
      );
      for (const n of names)
        assert.ok(
          sameTree(readTree(path.join(out, n)), newTrees.get(n)!),
          `run ${i}, lab ${n}: new tree after a complete run`,
        );
    }
    fs.rmSync(out, { recursive: true, force: true });
  }
  // How often each state was observed (labs summed over all runs); shown with --verbose-ish logs.
  if (process.env["GEN_LAB_CRASH_STATS"])
    console.log(
      `crash test: full run ${fullRunMs} ms, writing ${writeMs} ms; labs old ${seen.old}, new ${seen.new}, killed between the renames ${seen.betweenRenames}, staging left ${seen.staging}`,
    );
  assert.ok(seen.old + seen.new + seen.betweenRenames === ITERATIONS * LABS);
});

test("killed between the two renames: the old tree is intact beside, and the next run restores it", () => {
  const out = path.join(root, "window");
  fs.cpSync(oldOut, out, { recursive: true });
  const lab = names[0]!;
  // The state a kill between the renames leaves: lab set aside, staging complete.
  fs.renameSync(path.join(out, lab), path.join(out, `.${lab}.gen-lab-old`));
  fs.cpSync(path.join(newOut, lab), path.join(out, `.${lab}.gen-lab-new`), {
    recursive: true,
  });

  // --check writes nothing: the set-aside tree stays where it is.
  const check = runCli([newLabs[0]!, "-o", out, "--check"]);
  assert.is(check.status, 1, "drift: the lab directory is missing");
  assert.ok(fs.existsSync(path.join(out, `.${lab}.gen-lab-old`)));

  recoverInterrupted(out, lab);
  assert.ok(sameTree(readTree(path.join(out, lab)), oldTrees.get(lab)!));
  assert.not.ok(fs.existsSync(path.join(out, `.${lab}.gen-lab-old`)));
  assert.not.ok(fs.existsSync(path.join(out, `.${lab}.gen-lab-new`)));

  // The same state again, repaired by a plain run of the CLI, which then writes the new tree.
  fs.renameSync(path.join(out, lab), path.join(out, `.${lab}.gen-lab-old`));
  const r = runCli([newLabs[0]!, "-o", out, "-q"]);
  assert.is(r.status, 0, r.stderr);
  assert.ok(sameTree(readTree(path.join(out, lab)), newTrees.get(lab)!));
  assert.equal(
    fs.readdirSync(out).filter((e) => e.startsWith(`.${lab}.`)),
    [],
  );
});

test.run();
