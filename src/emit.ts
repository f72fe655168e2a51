import * as fs from "node:fs";
import * as path from "node:path";
import { createTwoFilesPatch } from "diff";
import type { GeneratedFile } from "./file.js";
import { MANIFEST_NAME, sha256, type Manifest } from "./render/generate.js";

/** An output directory gen-lab refuses to write or compare (exit code 2): what, and how to fix it. */
export class OutputError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "OutputError";
  }
}

/** What a write did, or a check found, in one lab's directory; paths relative to it. */
export interface TreeChange {
  readonly lab: string;
  readonly added: readonly string[];
  readonly changed: readonly string[];
  /** Files gen-lab wrote before and no longer makes. */
  readonly removed: readonly string[];
  /** Files gen-lab no longer makes but that were edited since: left in place, as the user's. */
  readonly kept: readonly string[];
  readonly unchanged: number;
}

/** What lies in a lab's directory, by path relative to it (never through a link). */
interface Entry {
  readonly kind: "file" | "dir" | "link" | "other";
  readonly mode: number;
}

interface Plan extends TreeChange {
  readonly dir: string;
  readonly exists: boolean;
  readonly files: readonly GeneratedFile[];
  /** The user's own entries (and edited, no longer generated files), carried into the new tree. */
  readonly carry: readonly [string, Entry][];
  /** Modes differ where bytes do not: a write restores them, a check does not count them. */
  readonly modesOnly: boolean;
}

/**
 * Write each lab's files to `<out>/<lab>/`: the new tree is built beside the old one and swapped
 * in, so a failed or killed run leaves the old tree; the user's own files are carried over; a
 * lab whose files are unchanged is not touched. Every refusal comes before anything is written.
 */
export function writeTree(
  out: string,
  files: readonly GeneratedFile[],
): TreeChange[] {
  const plans = planTree(out, files, true);
  const stale = plans.filter((p) => !isClean(p) || p.modesOnly || !p.exists);
  if (stale.length === 0) return plans.map(summary);
  makeOutputDir(out);
  const built: string[] = [];
  try {
    for (const plan of stale) built.push(buildTree(out, plan));
  } catch (e) {
    for (const dir of built) fs.rmSync(dir, { recursive: true, force: true });
    throw asOutputError(e, "no lab was changed");
  }
  stale.forEach((plan, i) => swapIn(out, plan, built[i]!));
  return plans.map(summary);
}

/** Compare each lab's files with `<out>/<lab>/` as a write would: the changes and a unified diff. */
export function checkTree(
  out: string,
  files: readonly GeneratedFile[],
): { changes: TreeChange[]; diff: string } {
  const plans = planTree(out, files, false);
  const diff = plans.flatMap((plan) =>
    [...plan.added, ...plan.changed, ...plan.removed].sort().map((rel) => {
      const file = plan.files.find((f) => relative(plan, f) === rel);
      // Only a regular file is read: a link in its place shows as an empty old file.
      const onDisk = path.join(plan.dir, rel);
      const old =
        plan.added.includes(rel) || !fs.lstatSync(onDisk).isFile()
          ? ""
          : fs.readFileSync(onDisk, "utf8");
      const name = `${plan.lab}/${rel}`;
      return createTwoFilesPatch(
        `a/${name}`,
        `b/${name}`,
        old,
        file?.contents ?? "",
        "",
        "",
        { context: 3 },
      ).replace(/^=+\n/, "");
    }),
  );
  return { changes: plans.map(summary), diff: diff.join("") };
}

const summary = ({
  dir,
  exists,
  files,
  carry,
  modesOnly,
  ...change
}: Plan): TreeChange => change;
const isClean = (p: TreeChange) =>
  p.added.length + p.changed.length + p.removed.length === 0;
const relative = (plan: { lab: string }, f: GeneratedFile) =>
  f.path.slice(plan.lab.length + 1);

function planTree(
  out: string,
  files: readonly GeneratedFile[],
  writing: boolean,
): Plan[] {
  const byLab = new Map<string, GeneratedFile[]>();
  for (const f of files) {
    const parts = f.path.split("/");
    if (
      parts.length < 2 ||
      parts.some((p) => p === "" || p === "." || p === "..")
    )
      throw new TypeError(
        `${JSON.stringify(f.path)} is not a path <lab>/<file> inside the output directory`,
      );
    byLab.set(parts[0]!, [...(byLab.get(parts[0]!) ?? []), f]);
  }
  const outStat = statOrUndefined(out, fs.statSync);
  if (outStat && !outStat.isDirectory())
    throw new OutputError(
      `${out} is not a directory`,
      "give -o a directory, or a path where one can be made",
    );
  try {
    return [...byLab].map(([lab, labFiles]) =>
      planLab(out, lab, labFiles, writing),
    );
  } catch (e) {
    throw asOutputError(e, "nothing was written");
  }
}

function planLab(
  out: string,
  lab: string,
  files: readonly GeneratedFile[],
  writing: boolean,
): Plan {
  const dir = path.join(out, lab);
  if (writing) restoreInterrupted(out, lab);
  const stat = statOrUndefined(dir, fs.lstatSync);
  if (stat && !stat.isDirectory())
    throw new OutputError(
      `${dir} is ${stat.isSymbolicLink() ? "a symbolic link" : "not a directory"}`,
      `gen-lab replaces ${dir} as a whole: move it away`,
    );
  const existing = stat ? readEntries(dir) : new Map<string, Entry>();
  const manifest = stat ? readManifest(dir, lab) : undefined;
  if (stat && !manifest && existing.size > 0)
    throw new OutputError(
      `${dir} is not empty and has no ${MANIFEST_NAME}: it is not a tree gen-lab wrote`,
      `gen-lab replaces ${dir} as a whole: move it away, or give another -o`,
    );
  const listed = new Map(
    (manifest?.files ?? []).map((e) => [e.path, e.sha256]),
  );
  listed.set(MANIFEST_NAME, "");
  const bytes = (rel: string) => fs.readFileSync(path.join(dir, rel), "utf8");
  const generated = new Set(files.map((f) => f.path.slice(lab.length + 1)));
  const plan = {
    added: [] as string[],
    changed: [] as string[],
    removed: [] as string[],
    kept: [] as string[],
    carry: [] as [string, Entry][],
  };
  let unchanged = 0;
  let modesOnly = false;
  const yours = (rel: string, what: string) =>
    new OutputError(
      `${path.join(dir, rel)} is ${what} of yours where gen-lab writes ${generated.has(rel) ? "a file" : "a directory"}`,
      "move it out of the lab's directory: gen-lab never overwrites what it did not write",
    );
  for (const f of files) {
    const rel = relative({ lab }, f);
    // A parent of this file that is not a directory: a file gen-lab wrote, or the user's.
    for (let at = rel.indexOf("/"); at > 0; at = rel.indexOf("/", at + 1)) {
      const parent = existing.get(rel.slice(0, at));
      if (parent && parent.kind !== "dir" && !listed.has(rel.slice(0, at)))
        throw yours(rel.slice(0, at), `a ${parent.kind}`);
    }
    const entry = existing.get(rel);
    if (!entry) plan.added.push(rel);
    else if (entry.kind !== "file") {
      if (!listed.has(rel) || entry.kind !== "link")
        throw yours(
          rel,
          `a ${entry.kind === "dir" ? "directory" : entry.kind}`,
        );
      plan.changed.push(rel);
    } else if (bytes(rel) !== f.contents) {
      if (!listed.has(rel)) throw yours(rel, "a file");
      plan.changed.push(rel);
    } else {
      unchanged++;
      if (entry.mode !== f.mode) modesOnly = true;
      // Version control keeps only the executable bit: a check counts that bit alone.
      if ((entry.mode & 0o111) !== (f.mode & 0o111))
        (unchanged--, plan.changed.push(rel));
    }
  }
  const dirs: [string, Entry][] = [];
  for (const [rel, entry] of existing) {
    if (generated.has(rel)) continue;
    if (entry.kind === "dir") {
      dirs.push([rel, entry]);
      continue;
    }
    const sha = listed.get(rel);
    if (
      sha !== undefined &&
      entry.kind === "file" &&
      (sha === "" || sha256(bytes(rel)) === sha)
    )
      plan.removed.push(rel);
    else if (entry.kind === "other")
      throw yours(rel, "a special file (FIFO, socket or device)");
    else {
      if (sha !== undefined) plan.kept.push(rel);
      plan.carry.push([rel, entry]);
    }
  }
  // A directory of the user's: empty, or holding what is carried over, and no generated file.
  const below = (rel: string, list: Iterable<string>) =>
    [...list].some((p) => p.startsWith(`${rel}/`));
  for (const [rel, entry] of dirs)
    if (
      !below(rel, generated) &&
      (below(
        rel,
        plan.carry.map(([p]) => p),
      ) ||
        !below(rel, existing.keys()))
    )
      plan.carry.push([rel, entry]);
  plan.carry.sort(([a], [b]) => (a < b ? -1 : 1));
  return {
    lab,
    dir,
    exists: stat !== undefined,
    files,
    ...plan,
    unchanged,
    modesOnly,
  };
}

/** Every entry below `dir`, walked without a stack of calls (a tree may be deep) and never through a link. */
function readEntries(dir: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const todo = [""];
  for (let rel = todo.pop(); rel !== undefined; rel = todo.pop()) {
    for (const d of fs.readdirSync(path.join(dir, rel), {
      withFileTypes: true,
    })) {
      const child = rel === "" ? d.name : `${rel}/${d.name}`;
      const mode = fs.lstatSync(path.join(dir, child)).mode & 0o7777;
      const kind = d.isDirectory()
        ? "dir"
        : d.isFile()
          ? "file"
          : d.isSymbolicLink()
            ? "link"
            : "other";
      entries.set(child, { kind, mode });
      if (kind === "dir") todo.push(child);
    }
  }
  return entries;
}

/** The lab's manifest, when it is a regular file gen-lab wrote for this lab. */
function readManifest(dir: string, lab: string): Manifest | undefined {
  const file = path.join(dir, MANIFEST_NAME);
  if (!statOrUndefined(file, fs.lstatSync)?.isFile()) return undefined;
  try {
    const m = JSON.parse(fs.readFileSync(file, "utf8")) as Manifest;
    return m.generator === "gen-lab" && m.lab === lab && Array.isArray(m.files)
      ? m
      : undefined;
  } catch {
    return undefined;
  }
}

/** `-o` and the directories above it that do not exist yet, made 0755 whatever the umask. */
function makeOutputDir(out: string): void {
  try {
    const first = fs.mkdirSync(out, { recursive: true });
    if (first === undefined) return;
    for (let dir = path.resolve(out); ; dir = path.dirname(dir)) {
      fs.chmodSync(dir, 0o755);
      if (dir === path.resolve(first)) break;
    }
  } catch (e) {
    throw asOutputError(e, "nothing was written");
  }
}

/** The new tree of one lab in a fresh directory beside the old one. */
function buildTree(out: string, plan: Plan): string {
  const tmp = fs.mkdtempSync(path.join(out, `.${plan.lab}.gen-lab-new-`));
  fs.chmodSync(tmp, 0o755);
  const made = new Set(["."]);
  const mkdir = (rel: string): void => {
    if (made.has(rel)) return;
    mkdir(path.posix.dirname(rel));
    fs.mkdirSync(path.join(tmp, rel), { mode: 0o755 });
    fs.chmodSync(path.join(tmp, rel), 0o755);
    made.add(rel);
  };
  for (const f of plan.files) {
    const rel = relative(plan, f);
    mkdir(path.posix.dirname(rel));
    const target = path.join(tmp, rel);
    fs.writeFileSync(target, f.contents, { flag: "wx", mode: f.mode });
    fs.chmodSync(target, f.mode);
  }
  for (const [rel, entry] of plan.carry) {
    const from = path.join(plan.dir, rel);
    const to = path.join(tmp, rel);
    mkdir(path.posix.dirname(rel));
    if (entry.kind === "dir") mkdir(rel);
    else if (entry.kind === "link") fs.symlinkSync(fs.readlinkSync(from), to);
    else {
      fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
      fs.chmodSync(to, entry.mode);
    }
  }
  // Directory modes last, deepest first: a read-only directory of the user's is filled before.
  for (const [rel, entry] of [...plan.carry].reverse())
    if (entry.kind === "dir") fs.chmodSync(path.join(tmp, rel), entry.mode);
  return tmp;
}

/**
 * Two renames put the new tree in place. A concurrent run that swapped its own tree in first
 * makes the second rename fail: this run then ends with an error and that run's tree stays.
 */
function swapIn(out: string, plan: Plan, tmp: string): void {
  const old = path.join(out, path.basename(tmp).replace("-new-", "-old-"));
  try {
    if (plan.exists) fs.renameSync(plan.dir, old);
    fs.renameSync(tmp, plan.dir);
  } catch (e) {
    if (plan.exists && fs.existsSync(old) && !fs.existsSync(plan.dir))
      fs.renameSync(old, plan.dir);
    fs.rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOENT"
      ? new OutputError(
          `${plan.dir} was replaced by another gen-lab run while this one wrote it`,
          "its tree is complete; run again if it was not the newest",
        )
      : asOutputError(e, "the lab's old tree is in place");
  }
  try {
    fs.rmSync(old, { recursive: true, force: true });
  } catch {
    // The new tree is in place; what is left of the old one is hidden and harmless.
  }
}

/** A run killed between the two renames left the old tree beside the lab's missing directory: put it back. */
function restoreInterrupted(out: string, lab: string): void {
  if (statOrUndefined(path.join(out, lab), fs.lstatSync)) return;
  const prefix = `.${lab}.gen-lab-old-`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(out).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  if (names[0]) fs.renameSync(path.join(out, names[0]), path.join(out, lab));
}

function statOrUndefined(
  file: string,
  stat: (p: string) => fs.Stats,
): fs.Stats | undefined {
  try {
    return stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw asOutputError(e, "check the output directory");
  }
}

/** A file system error as an OutputError naming the path: exit 2 with a message, never a stack trace. */
export function asOutputError(e: unknown, hint: string): Error {
  if (e instanceof OutputError || !(e instanceof Error) || !("code" in e))
    return e as Error;
  const err = e as NodeJS.ErrnoException;
  return new OutputError(
    `${err.path ?? "the output directory"}: ${err.code === "EACCES" ? "permission denied" : err.message}`,
    hint,
  );
}
