/**
 * Process and namespace bookkeeping of the data-plane test (test/e2e/dataplane.test.ts).
 *
 * Everything the test starts is recorded here: network namespaces (by their unique name) and
 * processes (by PID; each is started in its own process group). `cleanup()` ends exactly those
 * (and whatever still runs inside the test's own namespaces, which only the test created) and
 * deletes the namespaces. It runs from the suite's `after` hook and again, synchronously, from a
 * process 'exit' handler and on SIGINT/SIGTERM, so a failed assertion or an interrupted run
 * leaves nothing behind.
 */
import {
  spawn,
  spawnSync,
  type ChildProcess,
  type SpawnSyncReturns,
} from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface Daemon {
  name: string;
  pid: number;
  child: ChildProcess;
  log: string;
  exited: boolean;
  exitCode: number | null;
}

const namespaces: string[] = [];
const daemons: Daemon[] = [];
let cleaned = false;

/** The log files of every daemon, for failure messages. */
export let logDir = "";
export function setLogDir(dir: string): void {
  logDir = dir;
}

/** Run a program to completion; throws with its output unless it exits 0 (or `ok` allows). */
export function sh(
  argv: readonly string[],
  opts: {
    input?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    allowFail?: boolean;
  } = {},
): SpawnSyncReturns<string> {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd!, args, {
    encoding: "utf8",
    input: opts.input,
    env: opts.env ?? process.env,
    // A hang guard only: a loaded machine is not a hung program.
    timeout: Math.max(opts.timeoutMs ?? 60_000, 60_000),
    killSignal: "SIGKILL",
  });
  if (!opts.allowFail && (r.status !== 0 || r.error)) {
    throw new Error(
      `command ${
        (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT"
          ? "hung (killed after its hang guard)"
          : `failed (exit ${r.status}${r.signal ? `, signal ${r.signal}` : ""}${r.error ? `, ${r.error.message}` : ""})`
      }: ${argv.join(" ")}\n${r.stdout ?? ""}${r.stderr ?? ""}`,
    );
  }
  return r;
}

/** Create a network namespace and record it for cleanup. */
export function addNamespace(name: string): void {
  // Several test files share this module: each one's namespaces are cleaned up after it.
  cleaned = false;
  sh(["ip", "netns", "add", name]);
  namespaces.push(name);
  sh(["ip", "-n", name, "link", "set", "lo", "up"]);
}

/** Start a long-running program in its own process group, output to <logDir>/<name>.log. */
export function startDaemon(
  name: string,
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv } = {},
): Daemon {
  const log = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(log, "a");
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, {
    detached: true, // own process group: cleanup can signal the whole group
    stdio: ["ignore", fd, fd],
    env: opts.env ?? process.env,
  });
  fs.closeSync(fd);
  if (child.pid === undefined)
    throw new Error(`could not start ${name}: ${argv.join(" ")}`);
  const d: Daemon = {
    name,
    pid: child.pid,
    child,
    log,
    exited: false,
    exitCode: null,
  };
  child.on("exit", (code) => {
    d.exited = true;
    d.exitCode = code;
  });
  child.on("error", () => {
    d.exited = true;
  });
  daemons.push(d);
  return d;
}

/** The last lines of a daemon's log. */
export function tail(d: Daemon, lines = 40): string {
  try {
    return fs.readFileSync(d.log, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export const sleep = (ms: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `probe` until it returns a truthy value; a probe that throws (a daemon died) ends the wait at once. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | null,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let v: T | undefined | false | null;
    try {
      v = probe();
    } catch (e) {
      throw new Error(`while waiting for ${what}: ${(e as Error).message}`);
    }
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`hung: no ${what} after ${timeoutMs / 1000} s`);
    await sleep(intervalMs);
  }
}

/** Whether a process still runs (a zombie waiting for its parent to reap it does not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* group gone */
  }
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

/** PIDs of every process inside one of the test's own namespaces. */
function pidsInOurNamespaces(): number[] {
  const pids: number[] = [];
  for (const ns of namespaces) {
    const r = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
    for (const w of (r.stdout ?? "").split(/\s+/))
      if (/^\d+$/.test(w)) pids.push(Number(w));
  }
  return pids;
}

function busyWait(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * End every recorded process (SIGTERM to its group, then SIGKILL), then anything left inside the
 * test's namespaces, then delete the namespaces. Synchronous so that it also works in 'exit'.
 */
export function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const d of [...daemons].reverse()) signalGroup(d.pid, "SIGTERM");
  for (const pid of pidsInOurNamespaces()) signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + 3000;
  const left = () =>
    [...daemons.map((d) => d.pid), ...pidsInOurNamespaces()].filter(alive);
  while (left().length > 0 && Date.now() < deadline) busyWait(50);
  for (const pid of left()) signalGroup(pid, "SIGKILL");
  for (const d of daemons) signalGroup(d.pid, "SIGKILL");
  busyWait(100);
  for (const ns of namespaces.reverse())
    spawnSync("ip", ["netns", "del", ns], { encoding: "utf8" });
  namespaces.length = 0;
}

process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}
