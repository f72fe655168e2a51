import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
);
export const BIN = path.join(ROOT, "bin", "gen-lab.js");
export const FIXTURES = path.join(ROOT, "test", "fixtures");
export const GOLDEN = path.join(ROOT, "test", "golden");

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = "gen-lab-test-"): {
  dir: string;
  cleanup: () => void;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Run the built CLI as a user would. */
export function runCli(
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** Every regular file below dir with its mode, as a sorted map of POSIX relative path -> { mode, contents }. */
export function readTree(
  dir: string,
): Map<string, { mode: number; contents: string }> {
  const out = new Map<string, { mode: number; contents: string }>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), {
      withFileTypes: true,
    })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        const full = path.join(dir, r);
        out.set(r, {
          mode: fs.statSync(full).mode & 0o777,
          contents: fs.readFileSync(full, "utf8"),
        });
      }
    }
  };
  if (fs.existsSync(dir)) walk("");
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Valid lab fixtures: test/fixtures/*.yaml (invalid ones live in test/fixtures/invalid/). */
export function validFixtures(): string[] {
  return fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => path.join(FIXTURES, f));
}

/** Whether a program is on PATH. */
export function have(program: string): boolean {
  return (
    spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" })
      .status === 0
  );
}
