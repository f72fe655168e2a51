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

/** A second lab that is valid alone and may share the example's VPC. */
export function otherLab(
  changes: (t: string) => string = (t) => t,
  base = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8"),
): string {
  let t = base.replace(/^name: foo /m, "name: bar ");
  t = t
    .replace("cidrs: [10.20.0.0/16]", "cidrs: [10.30.0.0/16]")
    .replace("10.20.0.53", "10.30.0.53")
    .replace("10.20.5.0/24", "10.30.5.0/24");
  t = t
    .replace(/foo\.example\.com/g, "bar.example.com")
    .replace(/\/etc\/gen-lab\/foo\/foo-/g, "/etc/gen-lab/bar/bar-");
  t = t
    .replace("172.31.200.0/28", "172.31.201.0/28")
    .replace("172.31.200.16/28", "172.31.201.16/28")
    .replace("172.31.208.0/22", "172.31.216.0/22")
    .replace("172.31.212.0/22", "172.31.220.0/22");
  t = t
    .replace("address: 172.31.200.10", "address: 172.31.201.10")
    .replace("address: 172.31.200.20", "address: 172.31.201.20");
  t = t.replace(/10\.255\.0\./g, "10.254.0.");
  t = t.replace("runner_tags: [foo]", "runner_tags: [bar]");
  return changes(t);
}

/**
 * Say that the calling test cannot run here: scripts/test-all.sh counts the line as a skipped
 * test, not a passed one. The caller returns right after.
 */
export function skipped(why: string): void {
  console.log(`\nSKIPPED: ${why}`);
}
