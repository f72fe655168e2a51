/**
 * The one library module that touches the disk: it reads lab files and writes or checks
 * output trees. Everything else is pure.
 */
import { createTwoFilesPatch } from "diff";
import { hash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { codePointOrder, type GeneratedFile } from "./file.js";
import {
  generateEach,
  labsInPathOrder,
  MANIFEST_NAME,
  type Manifest,
} from "./generate.js";
import { checkLabs, labsOrThrow, type CheckResult } from "./load.js";
import { fileError, type Diagnostic } from "./diagnostics.js";
import { validatedModels, type LabModel } from "./model.js";
import { MAX_LAB_BYTES, tooLarge } from "./source.js";

/**
 * The bytes of an open file, or undefined if it holds more than `max`. Read to the cap, never
 * past it: a file of the proc filesystem reports size 0 and may hold gigabytes
 * (/proc/self/pagemap). `size` is what fstat said, for the usual one read.
 */
function readAtMost(fd: number, size: number, max: number): Buffer | undefined {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(
      Math.min(Math.max(size + 1, 1 << 16), max + 1),
    );
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) return Buffer.concat(chunks, total);
    total += n;
    if (total > max) return undefined;
    chunks.push(chunk.subarray(0, n));
  }
}

/**
 * The bytes of one lab file, or why not. Opened without blocking and checked before reading:
 * a FIFO would wait forever for a writer and a device like /dev/zero never ends.
 */
export function readLabFile(file: string): Uint8Array | Diagnostic {
  if (file === "")
    return fileError(
      '""',
      "the lab file's path is empty",
      "give the path of a lab YAML file (an unset variable?)",
    );
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? fileError(
          file,
          "no such file",
          "check the path; labs usually live in labs/<name>.yaml",
        )
      : fileError(
          file,
          `cannot read: ${errnoText(e)}`,
          "give the path of a readable lab YAML file",
        );
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory())
      return fileError(
        file,
        "is a directory, not a lab file",
        "give the lab files themselves, e.g. labs/*.yaml",
      );
    if (!st.isFile())
      return fileError(
        file,
        "is not a regular file (a FIFO, socket or device)",
        "give the path of a lab YAML file",
      );
    if (st.size > MAX_LAB_BYTES) return fileError(file, ...tooLarge(st.size));
    return (
      readAtMost(fd, st.size, MAX_LAB_BYTES) ??
      fileError(file, ...tooLarge(MAX_LAB_BYTES, { atLeast: true }))
    );
  } catch (e) {
    return fileError(
      file,
      `cannot read: ${errnoText(e)}`,
      "give the path of a readable lab YAML file",
    );
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Read lab files and check them together. Unreadable files become diagnostics, like any bad
 * input. A file given twice (`labs/*.yaml labs/foo.yaml`) is read once.
 */
export function checkLabFiles(files: readonly string[]): CheckResult {
  const texts: { file: string; text: Uint8Array }[] = [];
  const problems: Diagnostic[] = [];
  // The same file by any name (a symbolic or hard link) is one lab, read under the name that
  // sorts first: its base name goes into the generated headers, which must not depend on the
  // order of the arguments.
  const names = new Map<string, string>();
  for (const file of files) {
    let id = path.resolve(file);
    try {
      const st = fs.statSync(file);
      id = `${st.dev}:${st.ino}`;
    } catch {
      // Reported by readLabFile.
    }
    const named = names.get(id);
    if (named === undefined || codePointOrder(file, named) < 0)
      names.set(id, file);
  }
  for (const file of names.values()) {
    const read = readLabFile(file);
    if (read instanceof Uint8Array) texts.push({ file, text: read });
    else problems.push(read);
  }
  const result = checkLabs(texts);
  if (problems.length === 0) return result;
  return {
    labs: undefined,
    diagnostics: [...problems, ...result.diagnostics],
  };
}

/** Read, validate and resolve one lab file. Throws LabError with every problem found. */
export async function loadLab(
  file: string,
  onWarning?: (d: Diagnostic) => void,
): Promise<LabModel> {
  const [lab] = await loadLabs([file], onWarning);
  return lab!;
}

/**
 * Read several lab files and validate them together (cross-lab rules). Throws LabError, also
 * for a file that cannot be read, exactly as the CLI reports it.
 */
export async function loadLabs(
  files: readonly string[],
  onWarning?: (d: Diagnostic) => void,
): Promise<LabModel[]> {
  return labsOrThrow(checkLabFiles(files), onWarning);
}

/** What a write or a check found, per lab directory. */
export interface TreeChange {
  readonly lab: string;
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  readonly unchanged: number;
  /**
   * Files the lab no longer makes that its manifest lists, kept (only when there are any):
   * their bytes no longer hash to what the manifest recorded, so someone edited them (or the
   * manifest) since gen-lab wrote them. They stay, as the user's files.
   */
  readonly kept?: readonly string[];
  /** Written, but the previous tree (or part of it) could not be removed: why. */
  readonly leftover?: string;
}

/** A lab's directory: a lab name (lab-format.md), so never one of gen-lab's dot-named work directories. */
const LAB_DIRECTORY = /^[a-z][a-z0-9]{0,15}$/;

/**
 * The files a library caller gave writeTree or checkTree: each path `<lab>/<path in the lab>`
 * with a lab name first and a path in the lab a manifest may list ({@link isSafeRelative}), so
 * nothing lands outside its lab's directory; permission bits for a mode; text contents; no path twice, and none below
 * another file. Throws a TypeError naming the first file that is not, before any file system
 * call: a caller's programming error, not bad input.
 */
function validFiles(
  caller: string,
  files: readonly unknown[],
): readonly GeneratedFile[] {
  if (!Array.isArray(files))
    throw new TypeError(
      `${caller}: files must be an array of { path, mode, contents }`,
    );
  const seen = new Set<string>();
  files.forEach((f: unknown, i) => {
    const problem = (what: string) =>
      new TypeError(`${caller}: files[${i}] ${what}`);
    if (typeof f !== "object" || f === null)
      throw problem("is not a { path, mode, contents } object");
    const { path: p, mode, contents } = f as Record<string, unknown>;
    if (typeof p !== "string") throw problem("has no string path");
    const slash = p.indexOf("/");
    if (slash < 0 || !LAB_DIRECTORY.test(p.slice(0, slash)))
      throw problem(
        `(${JSON.stringify(p)}): a path must be <lab>/<path in the lab>, the lab a lab name`,
      );
    // What a manifest may list: a path written here is one a later run can find again.
    if (!isSafeRelative(p.slice(slash + 1)))
      throw problem(
        `(${JSON.stringify(p)}): a path may hold no empty, "." or ".." part nor NUL or backslash: it would leave the lab's directory, name nothing, or be a path no manifest lists`,
      );
    if (
      typeof mode !== "number" ||
      !Number.isInteger(mode) ||
      mode < 0 ||
      mode > 0o777
    )
      throw problem(`(${p}): mode must be permission bits, 0 to 0o777`);
    if (typeof contents !== "string")
      throw problem(`(${p}): contents must be a string`);
    if (seen.has(p)) throw problem(`(${p}): the path is given twice`);
    seen.add(p);
  });
  // A file below another file: only one of them could exist.
  for (const p of seen)
    for (let at = p.lastIndexOf("/"); at > 0; at = p.lastIndexOf("/", at - 1))
      if (seen.has(p.slice(0, at)))
        throw new TypeError(
          `${caller}: ${p} lies below ${p.slice(0, at)}, which is a file too`,
        );
  return files as readonly GeneratedFile[];
}

/** Files grouped by their first path component, the lab directory; paths relative to it. */
function byLab(files: readonly GeneratedFile[]): Map<string, GeneratedFile[]> {
  const groups = new Map<string, GeneratedFile[]>();
  for (const f of files) {
    const lab = f.path.split("/")[0]!;
    const list = groups.get(lab) ?? [];
    list.push({ ...f, path: f.path.slice(lab.length + 1) });
    groups.set(lab, list);
  }
  return groups;
}

/**
 * The labs in the order their directories sort (the order of `generate`'s paths), each with
 * its files relative to its directory, rendered a small batch at a time: a run over many labs
 * holds one batch's output at once, not all of it.
 */
function* renderedLabs(
  labs: readonly LabModel[],
): Generator<[string, GeneratedFile[]]> {
  const ordered = labsInPathOrder(labs);
  let i = 0;
  for (const files of generateEach(ordered)) {
    const lab = ordered[i++]!;
    const prefix = `${lab.name}/`.length;
    yield [lab.name, files.map((f) => ({ ...f, path: f.path.slice(prefix) }))];
  }
}

const oldName = (lab: string) => `.${lab}.gen-lab-old`;
const newName = (lab: string) => `.${lab}.gen-lab-new`;

/**
 * Errors that mean nothing of the kind asked for is at a path: absent, below a file, a link
 * where none is followed (or a loop of them), or a name no file system takes. Any other error
 * (EACCES above all) means something may be there that this user cannot see.
 */
const NO_SUCH_PATH: ReadonlySet<string> = new Set([
  "ENOENT",
  "ENOTDIR",
  "ELOOP",
  "ENAMETOOLONG",
]);

/** Whether p is a directory (not a link to one); an error other than its absence is thrown. */
const isDirectory = (p: string): boolean => {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if (NO_SUCH_PATH.has((e as NodeJS.ErrnoException).code ?? "")) return false;
    // EACCES: a directory above p this user may not search. p is not known to be absent.
    throw describeFsError(e, p);
  }
  return st?.isDirectory() ?? false;
};

/**
 * Where a lab's current tree is: its directory, or, when a run was killed between the two
 * renames of its swap, the previous tree set aside (the next write puts it back).
 */
function labDirectory(outDir: string, lab: string): string {
  const dir = path.join(outDir, lab);
  const old = path.join(outDir, oldName(lab));
  return !fs.existsSync(dir) && isDirectory(old) ? old : dir;
}

/**
 * Finish or undo a swap that a killed run left half done: if the lab directory is missing
 * but the previous one was set aside, put it back; drop leftovers of unfinished writes.
 */
export function recoverInterrupted(outDir: string, lab: string): void {
  const dir = path.join(outDir, lab);
  const old = path.join(outDir, oldName(lab));
  if (isDirectory(old) && !fs.existsSync(dir)) fs.renameSync(old, dir);
  else removeTree(old);
  removeTree(path.join(outDir, newName(lab)));
}

/**
 * Remove a directory tree, or a file or symbolic link in its place; nothing if it does not
 * exist. Never follows a link: a link is removed, not what it points to. Node 20's recursive
 * rmSync spends most of a large rewrite on bookkeeping; a plain depth-first unlink is several
 * times faster. `moveAway`, given a file's or link's path relative to the tree, may move it
 * elsewhere instead (and return true).
 */
function removeTree(target: string, moveAway?: MoveAway): void {
  try {
    if (!fs.lstatSync(target).isDirectory()) {
      fs.unlinkSync(target);
      return;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  refuseMounts(target);
  removeDirectory(target, moveAway, "", fs.lstatSync(target).dev);
}

type MoveAway = (rel: string, full: string) => boolean;

/** OutputError if something is mounted inside a tree about to be removed: it would be emptied. */
function refuseMounts(tree: string): void {
  const mounted = mountPointsBelow(tree);
  if (mounted.length > 0)
    throw new OutputError(
      `${mounted[0]} is mounted inside ${tree}, which gen-lab would remove`,
      `unmount it, then remove ${tree} or run again`,
    );
}

/** removeTree while handling another error: that error is the one to report. */
function removeTreeQuietly(target: string): void {
  try {
    removeTree(target);
  } catch {
    // The next run removes what is left (recoverInterrupted).
  }
}

/**
 * Depth first, on one file system only (like `rm --one-file-system`): a directory mounted
 * below (since the run began) is not emptied; its rmdir then fails (EBUSY) and is reported.
 */
function removeDirectory(
  dir: string,
  moveAway: MoveAway | undefined,
  rel: string,
  dev: number,
): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    const r = rel === "" ? e.name : `${rel}/${e.name}`;
    // Dirent types come from lstat: a link to a directory is not a directory here.
    if (!e.isDirectory()) {
      if (!moveAway?.(r, full)) fs.unlinkSync(full);
    } else if (fs.lstatSync(full).dev === dev)
      removeDirectory(full, moveAway, r, dev);
    else fs.rmdirSync(full);
  }
  fs.rmdirSync(dir);
}

/**
 * The mount points below a directory, from /proc/self/mountinfo (a bind mount of a directory
 * on the same file system has the same device number, so only the mount table tells). None
 * where there is no /proc.
 */
function mountPointsBelow(dir: string): string[] {
  let table: string;
  let real: string;
  try {
    table = fs.readFileSync("/proc/self/mountinfo", "utf8");
    real = fs.realpathSync(dir);
  } catch {
    return [];
  }
  const prefix = real.endsWith("/") ? real : `${real}/`;
  return table
    .split("\n")
    .map((line) =>
      // Field 5 is the mount point, with space, tab, newline and backslash as octal escapes.
      (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      ),
    )
    .filter((m) => m.startsWith(prefix));
}

/**
 * A path a manifest may list: relative, inside the lab directory, in plain segments. A
 * manifest is read from disk, where anyone may have edited it: `--check` must never read (and
 * print) a file outside the tree because a manifest names it.
 */
function isSafeRelative(p: unknown): p is string {
  return (
    typeof p === "string" &&
    p !== "" &&
    !p.includes("\0") &&
    !p.includes("\\") &&
    p.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..")
  );
}

/**
 * A manifest is a few KiB (one entry per file); anything far larger is not one gen-lab wrote,
 * and is not read whole into memory.
 */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * What a lab directory's manifest lists: each safe path with the sha256 recorded for it (if
 * it is one); nothing without a manifest, or when what lies at its name is not a regular file
 * of a sane size (a FIFO would block, a link to /dev/zero never ends, a link to /etc/shadow is
 * outside the tree): never followed.
 */
function readManifest(dir: string): Map<string, string | undefined> {
  const listed = new Map<string, string | undefined>();
  const file = readRegular(path.join(dir, MANIFEST_NAME), MAX_MANIFEST_BYTES);
  if (file?.contents === undefined) return listed;
  let data: Partial<Manifest> | null;
  try {
    data = JSON.parse(
      file.contents.toString("utf8"),
    ) as Partial<Manifest> | null;
  } catch {
    return listed;
  }
  if (data?.generator !== "gen-lab" || !Array.isArray(data.files))
    return listed;
  for (const e of data.files as unknown[]) {
    if (typeof e !== "object" || e === null) continue;
    const { path: p, sha256 } = e as { path?: unknown; sha256?: unknown };
    if (isSafeRelative(p))
      listed.set(
        p,
        typeof sha256 === "string" && /^[0-9a-f]{64}$/.test(sha256)
          ? sha256
          : undefined,
      );
  }
  return listed;
}

/**
 * The regular files a lab's manifest lists that the lab no longer makes, split: `removable`
 * still hold the bytes gen-lab wrote (their sha256 is the manifest's); `edited` were changed
 * since (or the manifest was), and are the user's now. Each read as `readInside` reads; what
 * is no regular file there now (a link, a directory) is not gen-lab's either.
 */
function noLongerMade(
  dir: string,
  generated: ReadonlySet<string>,
  readInside: (rel: string) => OnDisk | undefined,
  listed: ReadonlyMap<string, string | undefined> = readManifest(dir),
): { removable: [string, OnDisk][]; edited: string[] } {
  const removable: [string, OnDisk][] = [];
  const edited: string[] = [];
  for (const [p, sha256] of listed) {
    if (generated.has(p)) continue;
    const onDisk = readInside(p);
    if (!onDisk) continue;
    const unedited =
      onDisk.contents !== undefined &&
      sha256 !== undefined &&
      hash("sha256", onDisk.contents, "hex") === sha256;
    if (unedited) removable.push([p, onDisk]);
    else edited.push(p);
  }
  return { removable, edited };
}

/**
 * Reads files below one directory only through real directories: a path with a symbolic link
 * (or anything but a directory) among its parents reads as missing. `--check` prints what it
 * reads, and a link in a committed tree (out/foo/pipeline-data -> /elsewhere) must not make
 * it print files from outside. Each parent directory is looked at once.
 */
function insideReader(dir: string): (rel: string) => OnDisk | undefined {
  const isRealDir = new Map<string, boolean>();
  const parentsAreDirs = (rel: string): boolean => {
    for (let i = rel.indexOf("/"); i >= 0; i = rel.indexOf("/", i + 1)) {
      const parent = rel.slice(0, i);
      let ok = isRealDir.get(parent);
      if (ok === undefined) {
        ok = isDirectory(path.join(dir, parent));
        isRealDir.set(parent, ok);
      }
      if (!ok) return false;
    }
    return true;
  };
  return (rel) =>
    parentsAreDirs(rel)
      ? readRegular(path.join(dir, rel), MAX_COMPARED_BYTES)
      : undefined;
}

type EntryKind = "file" | "link" | "empty directory" | "other";

/**
 * What lies below dir, as POSIX paths relative to it: files, links (never followed), empty
 * directories, and anything else (a FIFO, a socket, a device) as "other".
 */
function listEntries(dir: string, base = ""): [string, EntryKind][] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, base), { withFileTypes: true });
  } catch (e) {
    // No lab directory yet: nothing to carry. A directory that cannot be read must not be
    // taken for an empty one: its contents would be left behind in the old tree.
    if (base === "" && (e as NodeJS.ErrnoException).code === "ENOENT")
      return [];
    throw e;
  }
  return entries.flatMap((e): [string, EntryKind][] => {
    const rel = base === "" ? e.name : `${base}/${e.name}`;
    if (e.isDirectory()) {
      const below = listEntries(dir, rel);
      return below.length > 0 ? below : [[rel, "empty directory"]];
    }
    if (e.isFile()) return [[rel, "file"]];
    if (e.isSymbolicLink()) return [[rel, "link"]];
    return [[rel, "other"]];
  });
}

/** A file on disk as compared: its bytes, or only its size when it is larger than `max`. */
interface OnDisk {
  readonly mode: number;
  readonly size: number;
  readonly contents: Buffer | undefined;
}

/**
 * Generated files are a few KiB; one far larger on disk differs, and is not read whole (a
 * 600 MB file would not even fit in a string).
 */
const MAX_COMPARED_BYTES = 16 * 1024 * 1024;

/**
 * A regular file's mode and bytes (only its size if it has more than `max`), or undefined when
 * nothing regular is there. Opened without following a link and without blocking, and checked
 * on the open descriptor: what is read is what was checked, even if the path changes meanwhile.
 */
function readRegular(file: string, max: number): OnDisk | undefined {
  let fd: number;
  try {
    fd = fs.openSync(
      file,
      fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
    );
  } catch (e) {
    // Absent, a symbolic link (ELOOP with O_NOFOLLOW), below a file or a name no file can
    // have: not this regular file. A file this user may not read is there all the same:
    // taking it for a missing one would report it as added (or carry nothing over), so that
    // is an error.
    const code = (e as NodeJS.ErrnoException).code ?? "";
    // ENXIO, ENODEV: a socket, or a device without a driver: there, but no regular file either.
    if (NO_SUCH_PATH.has(code) || code === "ENXIO" || code === "ENODEV")
      return undefined;
    throw new OutputError(
      `cannot read ${file}: ${errnoText(e)}`,
      "make the output directory readable to this user (chmod u+rX), or run gen-lab as its owner",
    );
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const mode = st.mode & 0o7777;
    if (st.size > max) return { mode, size: st.size, contents: undefined };
    const contents = fs.readFileSync(fd);
    return { mode, size: contents.length, contents };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** The text of a file for a patch, or a line saying why it is not shown. */
function patchText(onDisk: OnDisk): string {
  return onDisk.contents === undefined
    ? `(${onDisk.size} bytes, too large to show)\n`
    : onDisk.contents.toString("utf8");
}

/**
 * Compare one lab's generated files with its directory on disk. `check` compares modes as
 * version control keeps them (the executable bit) and renders a patch per difference; `write`
 * compares exact modes and renders no patches (nobody would read them).
 */
function compareLab(
  outDir: string,
  lab: string,
  files: readonly GeneratedFile[],
  purpose: "check" | "write",
  budget: DiffBudget = { lines: 0 },
): TreeChange & { patches: string[] } {
  const exactModes = purpose === "write";
  const withPatches = purpose === "check";
  const dir = labDirectory(outDir, lab);
  const added: string[] = [];
  const changed: string[] = [];
  const patches: string[] = [];
  let unchanged = 0;
  const readInside = insideReader(dir);
  for (const f of files) {
    const onDisk = readInside(f.path);
    const rel = `${lab}/${f.path}`;
    if (!onDisk) {
      added.push(rel);
      if (withPatches)
        patches.push(patchOf(budget, "/dev/null", `b/${rel}`, "", f.contents));
      continue;
    }
    // Bytes, not decoded text: an invalid byte on disk must not pass for the U+FFFD it decodes to.
    const sameBytes =
      onDisk.contents !== undefined &&
      onDisk.size === Buffer.byteLength(f.contents) &&
      onDisk.contents.equals(Buffer.from(f.contents));
    // Version control keeps only the executable bit, so a fresh checkout is compared on that alone.
    const modeDiffers = exactModes
      ? onDisk.mode !== f.mode
      : ((onDisk.mode & 0o111) !== 0) !== ((f.mode & 0o111) !== 0);
    if (sameBytes && !modeDiffers) {
      unchanged++;
      continue;
    }
    changed.push(rel);
    if (!withPatches) continue;
    let patch = sameBytes
      ? ""
      : patchOf(budget, `a/${rel}`, `b/${rel}`, patchText(onDisk), f.contents);
    if (modeDiffers)
      patch = `mode of ${rel}: ${onDisk.mode.toString(8).padStart(4, "0")} -> ${f.mode.toString(8).padStart(4, "0")}\n${patch}`;
    patches.push(patch);
  }
  const generated = new Set(files.map((f) => f.path));
  const removed: string[] = [];
  const { removable, edited } = noLongerMade(dir, generated, readInside);
  for (const [p, onDisk] of removable) {
    const rel = `${lab}/${p}`;
    removed.push(rel);
    if (withPatches)
      patches.push(
        patchOf(budget, `a/${rel}`, "/dev/null", patchText(onDisk), ""),
      );
  }
  const kept = edited.map((p) => `${lab}/${p}`);
  return {
    lab,
    added,
    changed,
    removed,
    unchanged,
    ...(kept.length > 0 ? { kept } : {}),
    patches,
  };
}

/**
 * Limits of `--check`'s diff. Myers' line diff takes time in proportion to the lines times the
 * lines that differ, so a file of more lines, or with more of them changed, is named with the
 * reason it is not diffed; and once the diff holds as many lines in all, the rest of the files
 * are only named. Lab output is a few hundred lines per file: these bound hostile labs only.
 */
const PATCH_MAX_LINES = 20_000;
const PATCH_MAX_EDITS = 2_000;
const DIFF_MAX_LINES = 1_000_000;

/** The lines a `--check` run has diffed so far, against DIFF_MAX_LINES. */
interface DiffBudget {
  lines: number;
}

function lineCount(text: string, max: number): number {
  let n = 0;
  for (
    let i = text.indexOf("\n");
    i >= 0 && n <= max;
    i = text.indexOf("\n", i + 1)
  )
    n++;
  return n + (text === "" || text.endsWith("\n") ? 0 : 1);
}

/** A unified diff of one file, or its header and why there is none. */
function patchOf(
  budget: DiffBudget,
  oldName: string,
  newName: string,
  oldText: string,
  newText: string,
): string {
  const header = `${"=".repeat(67)}\n--- ${oldName}\n+++ ${newName}\n`;
  if (budget.lines > DIFF_MAX_LINES)
    return `${header}(not diffed: this run's diff already holds over ${DIFF_MAX_LINES} lines)\n`;
  const before = lineCount(oldText, PATCH_MAX_LINES);
  const after = lineCount(newText, PATCH_MAX_LINES);
  if (before > PATCH_MAX_LINES || after > PATCH_MAX_LINES)
    return `${header}(not diffed: a file of over ${PATCH_MAX_LINES} lines)\n`;
  budget.lines += before + after;
  // With nothing on one side there is nothing to search: only a bound on the lines applies.
  const patch =
    oldText === "" || newText === ""
      ? createTwoFilesPatch(oldName, newName, oldText, newText, "", "", {
          context: 3,
        })
      : createTwoFilesPatch(oldName, newName, oldText, newText, "", "", {
          context: 3,
          maxEditLength: PATCH_MAX_EDITS,
        });
  return (
    patch ??
    `${header}(not diffed: over ${PATCH_MAX_EDITS} lines differ among ${before} before and ${after} after)\n`
  );
}

/** `--check`: what writing `files` would change, with a unified diff. Writes nothing. */
export function checkTree(
  outDir: string,
  files: readonly GeneratedFile[],
): { changes: TreeChange[]; diff: string } {
  const groups = byLab(validFiles("checkTree()", files));
  checkOutputDirectory(outDir, [...groups.keys()]);
  return checkGroups(outDir, groups);
}

/** {@link checkTree} for labs, each rendered only when it is compared. */
export function checkLabTrees(
  outDir: string,
  labs: readonly LabModel[],
): { changes: TreeChange[]; diff: string } {
  const models = validatedModels("checkLabTrees()", labs);
  checkOutputDirectory(
    outDir,
    models.map((l) => l.name),
  );
  return checkGroups(outDir, renderedLabs(models));
}

function checkGroups(
  outDir: string,
  groups: Iterable<[string, readonly GeneratedFile[]]>,
): { changes: TreeChange[]; diff: string } {
  const changes: TreeChange[] = [];
  const patches: string[] = [];
  const budget: DiffBudget = { lines: 0 };
  for (const [lab, labFiles] of groups) {
    const { patches: labPatches, ...change } = compareLab(
      outDir,
      lab,
      labFiles,
      "check",
      budget,
    );
    // What a write would refuse in a lab it has to rewrite (something of the user's in the
    // way of a generated file, a mount point), --check refuses alike: it never advises a run
    // that then fails.
    const dir = labDirectory(outDir, lab);
    if (
      change.added.length + change.changed.length + change.removed.length > 0 &&
      isDirectory(dir)
    )
      carriedOver(dir, lab, labFiles, generatedDirectories(labFiles));
    changes.push(change);
    for (const patch of labPatches) patches.push(patch);
  }
  return { changes, diff: patches.join("") };
}

/**
 * Write each lab's directory so that a killed run leaves the previous tree intact: the new
 * tree is built beside it (`.<lab>.gen-lab-new`), then swapped in with two renames; a run
 * killed between them is repaired by the next run (recoverInterrupted). Every changed lab's
 * new tree is built before the first swap, so an error while writing (it throws
 * {@link OutputError}) changes no lab. Files of the old tree that its manifest does not list
 * were not written by gen-lab and are carried over; files it lists that the lab no longer
 * produces are dropped. An unchanged lab is not touched. A lab directory that is a file or a
 * symbolic link is refused before anything is written.
 */
export function writeTree(
  outDir: string,
  files: readonly GeneratedFile[],
): TreeChange[] {
  const groups = byLab(validFiles("writeTree()", files));
  return writeGroups(outDir, groups, [...groups.keys()]);
}

/**
 * {@link writeTree} for labs, rendered a batch of 32 at a time as they are written: memory
 * stays that of one batch's output however many labs there are. The labs are validated
 * together before (checkLabs), so rendering cannot fail halfway on bad input.
 */
export function writeLabTrees(
  outDir: string,
  labs: readonly LabModel[],
): TreeChange[] {
  const models = validatedModels("writeLabTrees()", labs);
  return writeGroups(
    outDir,
    renderedLabs(models),
    models.map((l) => l.name),
  );
}

/**
 * A problem with the output directory that the user can fix (it is a file, a link, not
 * writable, the disk is full): the CLI reports it as bad usage, without a stack trace.
 */
export class OutputError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "OutputError";
  }
}

/** What the errno of a failed file system call means, in words. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "the file system is read-only",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "a part of the path is a file, not a directory",
  ENOENT: "a part of the path does not exist",
  EEXIST: "something is in the way",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "the path is too long",
  EIO: "an input/output error of the device",
  EISDIR: "it is a directory",
};

/** The words for an error's errno (with the code, for searching), or its message. */
function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === undefined) return e instanceof Error ? e.message : String(e);
  return ERRNO_TEXT[code] ? `${ERRNO_TEXT[code]} (${code})` : code;
}

/** What the errno of a failed file system call means for the user. */
function describeFsError(e: unknown, target: string): OutputError {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  const hints: Record<string, string> = {
    EACCES: "choose an output directory you may write to",
    EPERM: "choose an output directory you may write to",
    EROFS: "choose a writable output directory",
    ENOSPC: "free some space and run again",
    EDQUOT: "free some space and run again",
    ENOTDIR: "check the -o path",
    ENOENT: "check the -o path",
    EEXIST: "remove it or choose another -o",
    ELOOP: "check the -o path",
    ENAMETOOLONG: "choose a shorter -o path",
  };
  // Node names the path the call failed on; that is the one the user must look at.
  const { path: failed, syscall } = e as NodeJS.ErrnoException;
  // Creating a file in a directory that exists and still failing with ENOENT: a file system
  // that makes no files of the user's (/proc, /sys).
  const noNewFiles =
    code === "ENOENT" &&
    syscall === "open" &&
    failed !== undefined &&
    isDirectory(path.dirname(failed));
  const reason = noNewFiles
    ? `${path.dirname(failed)} takes no new files (ENOENT): it is on a kernel file system such as /proc or /sys`
    : errnoText(e);
  const hint = noNewFiles
    ? "choose an output directory on a real file system"
    : (hints[code] ?? "check the output directory");
  const verb =
    syscall === "unlink" || syscall === "rmdir"
      ? "cannot remove"
      : syscall === "rename"
        ? "cannot move"
        : syscall === "scandir" ||
            syscall === "read" ||
            syscall === "lstat" ||
            syscall === "stat"
          ? "cannot read"
          : "cannot write";
  return new OutputError(
    `${verb} ${failed ?? target}: ${reason}`,
    verb === "cannot remove" && (code === "EACCES" || code === "EPERM")
      ? code === "EPERM"
        ? "make it and its directory changeable (chattr -i -a, chmod u+w), or remove it by hand"
        : "make its directory writable (chmod u+w), or remove it by hand"
      : hint,
  );
}

/** A lock file in the output directory: two runs writing one tree would remove each other's work. */
const LOCK_NAME = ".gen-lab.lock";

/**
 * Where this process runs, as the lock records it: a PID means something only on the same host
 * and in the same PID namespace (a container has its own; an NFS-shared output directory may
 * be written from several hosts).
 */
function processScope(): string {
  let ns = "";
  try {
    ns = fs.readlinkSync("/proc/self/ns/pid");
  } catch {
    // No /proc: the host name alone.
  }
  return `${os.hostname()}${ns ? `/${ns}` : ""}`.replace(/\s/g, "_");
}

/**
 * When a process started, in clock ticks after boot (field 22 of /proc/<pid>/stat), or
 * undefined without /proc. With its PID it names one process: a PID reused later has a later
 * start.
 */
function startTime(pid: number | "self"): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock's process may still be a writer: alive, not this process, started when the
 * lock says (if it says), and (where /proc tells) a Node process. A killed run's PID may be
 * reused by something else, PID 1 of a container or another Node program; that lock is stale.
 */
function holderAlive(pid: number, started: string | undefined): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid)
    return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (started !== undefined) {
    const now = startTime(pid);
    if (now !== undefined && now !== started) return false;
  }
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return true; // no /proc: trust the PID
  }
  const argv0 = path.basename(cmdline.split("\0")[0] ?? "");
  return argv0.startsWith("node") || cmdline.includes("gen-lab");
}

/** A lock file as it was read: its text and how long ago it was last written. */
interface LockFile {
  readonly text: string;
  readonly ageMs: number;
}

/** The text of a lock file if it is a small regular file; OutputError for anything else. */
function readLock(lock: string): LockFile | undefined {
  let fd: number;
  try {
    fd = fs.openSync(
      lock,
      fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW,
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new OutputError(
      `${lock} is not a lock file gen-lab can read (${(e as NodeJS.ErrnoException).code})`,
      "if no gen-lab runs, remove it",
    );
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > 512)
      throw new OutputError(
        `${lock} is not a lock file gen-lab wrote`,
        "if no gen-lab runs, remove it",
      );
    return {
      text: fs.readFileSync(fd, "utf8"),
      ageMs: Date.now() - st.mtimeMs,
    };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A lock with text that is not a whole `<pid> <scope> [<start time>]` line: gen-lab writes
 * its lock whole, so this is someone else's file or a lock written the old way. Young, it may
 * be a writer still writing it: held. Older, it is stale.
 */
const UNREADABLE_LOCK_GRACE_MS = 10_000;

/**
 * Who holds a lock file whose writer may still be at work (for the message), or undefined for
 * a stale lock. A lock from another host or PID namespace cannot be checked from here: held,
 * until it is removed by hand.
 */
function lockHolder(held: LockFile, scope: string): string | undefined {
  const m = /^(\d{1,10})(?: (\S{1,400})(?: (\d{1,20}))?)?\n$/.exec(held.text);
  if (!m)
    return held.ageMs < UNREADABLE_LOCK_GRACE_MS
      ? "another gen-lab (its lock is still being written)"
      : undefined;
  const [, pid, theirs, started] = m;
  if (theirs !== undefined && theirs !== scope)
    return `another gen-lab (process ${pid} on ${theirs.split("/")[0]}, in another host or container)`;
  return holderAlive(Number(pid), started)
    ? `another gen-lab (process ${pid})`
    : undefined;
}

/**
 * Take the output directory's lock, or throw OutputError if a live gen-lab holds it. The lock
 * is written whole under a name of this process's own and then linked into place, so no
 * other run ever reads it half-written. A lock left by a killed run (its process is gone) is
 * taken over: moved aside under a name of our own first, so that two runs finding it at once
 * cannot both take it. Returns the release.
 */
function lockOutput(outDir: string): () => void {
  const lock = path.join(outDir, LOCK_NAME);
  const scope = processScope();
  const started = startTime("self");
  const mine = `${process.pid} ${scope}${started === undefined ? "" : ` ${started}`}\n`;
  const draft = `${lock}.${process.pid}.new`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (placeLock(lock, draft, mine)) {
      removeDeadDrafts(outDir);
      return () => {
        try {
          if (fs.readFileSync(lock, "utf8") === mine) fs.unlinkSync(lock);
        } catch {
          // Gone already: nothing to release.
        }
      };
    }
    const held = readLock(lock);
    if (held === undefined) continue; // released meanwhile
    const holder = lockHolder(held, scope);
    if (holder)
      throw new OutputError(
        `${holder} is writing ${outDir}`,
        `wait for it to finish; if no gen-lab runs, remove ${lock}`,
      );
    const aside = `${lock}.${process.pid}`;
    try {
      fs.renameSync(lock, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue; // someone moved it first
      throw describeFsError(e, lock);
    }
    if (fs.readFileSync(aside, "utf8") !== held.text) {
      // Another run took the stale lock over first: give its lock back.
      fs.renameSync(aside, lock);
      continue;
    }
    fs.unlinkSync(aside);
  }
  throw new OutputError(
    `cannot take the lock ${lock}`,
    "another gen-lab may be starting; run again",
  );
}

/** Whether the output directory holds a lock, a lock draft or a lock set aside. */
function hasLockFiles(outDir: string): boolean {
  try {
    return fs.readdirSync(outDir).some((n) => n.startsWith(LOCK_NAME));
  } catch {
    return false;
  }
}

/**
 * A killed run may leave its lock draft or a lock it was taking over under its own name
 * (`.gen-lab.lock.<pid>.new`, `.gen-lab.lock.<pid>`): the holder of the lock removes those
 * whose process is gone.
 */
function removeDeadDrafts(outDir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(outDir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\.gen-lab\.lock\.(\d{1,10})(?:\.new)?$/.exec(name);
    if (
      !m ||
      Number(m[1]) === process.pid ||
      holderAlive(Number(m[1]), undefined)
    )
      continue;
    try {
      if (fs.lstatSync(path.join(outDir, name)).isFile())
        fs.unlinkSync(path.join(outDir, name));
    } catch {
      // Gone meanwhile, or not ours to remove: left as is.
    }
  }
}

/**
 * Create the lock with its whole text, or return false if a lock exists. The text goes to a
 * draft file first, which link() puts in place only if the name is free: atomic, with content.
 * On a file system without hard links, an exclusive create (whose text follows a moment
 * later: a reader sees an empty lock, young, and takes it as held).
 */
function placeLock(lock: string, draft: string, text: string): boolean {
  try {
    fs.writeFileSync(draft, text);
    try {
      fs.linkSync(draft, lock);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return false;
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP")
        throw e;
    }
    fs.writeFileSync(lock, text, { flag: "wx" });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    if (e instanceof OutputError) throw e;
    throw describeFsError(e, lock);
  } finally {
    try {
      fs.unlinkSync(draft);
    } catch {
      // Never made (the disk was full, say): nothing to remove.
    }
  }
}

/**
 * Refuse, before anything is written, an output tree gen-lab must not touch: the output path
 * is not a directory, or a lab's directory is a file or a symbolic link. gen-lab replaces a
 * lab's directory whole, and would otherwise replace (or, through a link, empty) something
 * it did not write.
 */
function checkOutputDirectory(outDir: string, labs: readonly string[]): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(outDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && fs.lstatSync(outDir, { throwIfNoEntry: false }))
      throw new OutputError(
        `${outDir} is a symbolic link to nothing`,
        "remove the link or point it at a directory",
      );
    if (code !== "ENOENT") throw describeFsError(e, outDir);
  }
  if (st && !st.isDirectory())
    throw new OutputError(
      `${outDir} is a file, not a directory`,
      "give -o a directory (it is created if missing)",
    );
  for (const lab of labs) {
    const dir = path.join(outDir, lab);
    let lst: fs.Stats | undefined;
    try {
      lst = fs.lstatSync(dir, { throwIfNoEntry: false });
    } catch (e) {
      // EACCES: an output directory this user may not enter.
      throw describeFsError(e, dir);
    }
    if (lst && !lst.isDirectory())
      throw new OutputError(
        `${dir} is ${lst.isSymbolicLink() ? "a symbolic link" : "a file"}, not the directory gen-lab writes`,
        "gen-lab replaces each lab's directory as a whole: move it away, or choose another -o",
      );
  }
}

interface Staged {
  readonly lab: string;
  readonly dir: string;
  readonly staging: string;
  /**
   * The user's files and links carried over, each with what it was when copied (size, time
   * and inode of a file; the target of a link): one that differs when the old tree is removed
   * was changed during the run, and is moved into the new tree instead.
   */
  readonly carried: ReadonlyMap<string, string>;
  /** Paths of the old tree that are gen-lab's: listed by its manifest, or generated now. */
  readonly owned: ReadonlySet<string>;
}

/** What a carried file or link was when it was copied (see {@link Staged.carried}). */
function carriedState(file: string): string {
  const st = fs.lstatSync(file);
  return st.isSymbolicLink()
    ? `link ${fs.readlinkSync(file)}`
    : `file ${st.size} ${st.mtimeMs} ${st.ino}`;
}

/** The directories a lab's files lie in, relative to its directory. */
function generatedDirectories(labFiles: readonly GeneratedFile[]): Set<string> {
  const dirs = new Set<string>();
  for (const f of labFiles)
    for (let i = f.path.indexOf("/"); i >= 0; i = f.path.indexOf("/", i + 1))
      dirs.add(f.path.slice(0, i));
  return dirs;
}

/**
 * Build one lab's new tree in its staging directory beside its directory
 * (`.<lab>.gen-lab-new`, made by the caller, empty): each directory made once, each file
 * created exclusively; then the files of the old tree its manifest does not list, which
 * gen-lab did not write, carried over.
 */
function buildStaging(
  outDir: string,
  lab: string,
  labFiles: readonly GeneratedFile[],
  umask: number,
): Staged {
  const dir = path.join(outDir, lab);
  const staging = path.join(outDir, newName(lab));
  const dirs = generatedDirectories(labFiles);
  const { carried, owned } = carriedOver(dir, lab, labFiles, dirs);

  for (const d of [...dirs].sort()) makeDirectory(path.join(staging, d), umask);
  for (const f of labFiles) {
    const target = path.join(staging, f.path);
    fs.writeFileSync(target, f.contents, { mode: f.mode, flag: "wx" });
    // The contract fixes modes exactly; only a umask that narrows this one needs a chmod.
    if ((f.mode & ~umask) !== f.mode) fs.chmodSync(target, f.mode);
  }
  const asRoot = process.getuid?.() === 0;
  const states = new Map<string, string>();
  // Hard links among the carried files stay links to one file: by device and inode.
  const firstCopy = new Map<string, string>();
  // Directories that exist only for carried entries: they get their old mode and owner.
  const userDirs = new Set<string>();
  for (const [rel, kind] of carried) {
    const source = path.join(dir, rel);
    const target = path.join(staging, rel);
    for (let i = rel.indexOf("/"); i >= 0; i = rel.indexOf("/", i + 1))
      if (!dirs.has(rel.slice(0, i))) userDirs.add(rel.slice(0, i));
    if (kind === "empty directory") {
      fs.mkdirSync(target, { recursive: true });
      userDirs.add(rel);
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const st = fs.lstatSync(source);
    states.set(rel, carriedState(source));
    const inode = `${st.dev}:${st.ino}`;
    const sibling = st.nlink > 1 ? firstCopy.get(inode) : undefined;
    if (sibling !== undefined) {
      fs.linkSync(sibling, target);
      continue;
    }
    fs.cpSync(source, target, {
      preserveTimestamps: true,
      verbatimSymlinks: true,
    });
    if (st.nlink > 1) firstCopy.set(inode, target);
    if (asRoot) fs.lchownSync(target, st.uid, st.gid);
  }
  // Deepest first, after everything is in place: a directory made read-only is filled already.
  for (const d of [...userDirs].sort().reverse()) {
    const st = fs.lstatSync(path.join(dir, d));
    const target = path.join(staging, d);
    if (asRoot) fs.lchownSync(target, st.uid, st.gid);
    fs.chmodSync(target, st.mode & 0o7777);
  }
  return { lab, dir, staging, carried: states, owned };
}

/**
 * What of the old tree gen-lab did not write (its manifest does not list it) and carries over
 * into the new one: files, links and empty directories; and the paths that are gen-lab's.
 * Refuses (OutputError) what it cannot carry: a FIFO, socket or device, a mount point, and
 * anything in the way of a generated file or directory.
 */
function carriedOver(
  dir: string,
  lab: string,
  labFiles: readonly GeneratedFile[],
  generatedDirs: ReadonlySet<string>,
): { carried: [string, EntryKind][]; owned: Set<string> } {
  // The old tree is removed after the swap: removing it would empty what is mounted there.
  const mounted = mountPointsBelow(dir);
  if (mounted.length > 0)
    throw new OutputError(
      `${mounted[0]} is a mount point inside a lab directory, which gen-lab replaces as a whole`,
      "unmount it, or mount it outside the output directory",
    );
  const generated = new Map(labFiles.map((f) => [f.path, f.contents]));
  const listed = readManifest(dir);
  const owned = new Set([
    ...noLongerMade(
      dir,
      new Set(generated.keys()),
      insideReader(dir),
      listed,
    ).removable.map(([p]) => p),
    ...generated.keys(),
  ]);
  // A tree with a manifest (every lab generate() makes) records what gen-lab wrote. What lies
  // where such a tree has a file is gen-lab's when the manifest lists it (edited or not:
  // generated files are not to be edited), or when it already holds the new bytes (a tree
  // whose manifest was lost). Anything else is the user's, and never overwritten.
  const managed = generated.has(MANIFEST_NAME);
  const carried: [string, EntryKind][] = [];
  for (const [rel, kind] of listEntries(dir)) {
    const contents = generated.get(rel);
    if (
      managed &&
      contents !== undefined &&
      rel !== MANIFEST_NAME &&
      !listed.has(rel) &&
      !holds(path.join(dir, rel), kind, contents)
    )
      throw new OutputError(
        `${path.join(dir, rel)} (a ${kind} gen-lab did not write: the lab's manifest does not list it) is where gen-lab writes ${lab}/${rel}`,
        "move it out of the lab directory; if it is an old copy of gen-lab's output, delete it",
      );
    if (owned.has(rel)) continue;
    if (generatedDirs.has(rel) && kind === "empty directory") continue;
    const where = path.join(dir, rel);
    if (kind === "other")
      throw new OutputError(
        `${where} is a FIFO, socket or device, which gen-lab cannot carry into the new tree`,
        "move it out of the lab directory",
      );
    let clash: string | undefined = generatedDirs.has(rel) ? rel : undefined;
    for (let i = rel.indexOf("/"); clash === undefined && i >= 0;) {
      if (generated.has(rel.slice(0, i))) clash = rel.slice(0, i);
      i = rel.indexOf("/", i + 1);
    }
    if (clash !== undefined)
      throw new OutputError(
        `${where} (a ${kind} gen-lab did not write) is in the way of the generated ${generated.has(clash) ? "file" : "directory"} ${lab}/${clash}`,
        "move it out of the lab directory",
      );
    carried.push([rel, kind]);
  }
  return { carried, owned };
}

/** Whether the file at `file` (of the given kind) holds exactly `contents`. */
function holds(file: string, kind: EntryKind, contents: string): boolean {
  if (kind !== "file") return false;
  const onDisk = readRegular(file, MAX_COMPARED_BYTES);
  return onDisk?.contents?.equals(Buffer.from(contents)) === true;
}

/**
 * Two phases, so that a failure while writing (disk full, permissions) changes no lab: first
 * every changed lab's new tree is built beside its directory; on any error they are all
 * removed. Then each is swapped in with two renames, and the previous trees are removed.
 */
function writeGroups(
  outDir: string,
  groups: Iterable<[string, readonly GeneratedFile[]]>,
  labNames: readonly string[],
): TreeChange[] {
  checkOutputDirectory(outDir, labNames);
  // Taken when the first lab needs writing: a run that changes nothing writes nothing, not
  // even a lock, and works on a read-only tree.
  let release: (() => void) | undefined;
  const lock = () => {
    if (release) return;
    try {
      makeDirectories(outDir);
      release = lockOutput(outDir);
    } catch (e) {
      if (e instanceof OutputError) throw e;
      throw describeFsError(e, outDir);
    }
  };
  try {
    const { changes, staged } = buildAll(outDir, groups, lock);
    const leftovers = swapAll(outDir, staged);
    // A killed run's lock (or lock draft), and this run had nothing to write: taken over and
    // released, so a complete run leaves no lock behind. A live writer's lock, or one in a
    // tree this user cannot write, stays as it is: nothing here needed it.
    if (!release && hasLockFiles(outDir)) {
      try {
        lock();
      } catch {
        // Left as is (see above).
      }
    }
    return changes.map((c) =>
      leftovers.has(c.lab) ? { ...c, leftover: leftovers.get(c.lab) } : c,
    );
  } finally {
    release?.();
  }
}

/**
 * `mkdir -p` one level at a time. Node 20's recursive mkdirSync spins forever below /proc and
 * reports ENOENT for a read-only file system; each plain mkdir fails with the real reason.
 */
function makeDirectories(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) fs.mkdirSync(d);
}

/** Phase one: each changed lab's new tree, built beside it. On any error, none is left. */
function buildAll(
  outDir: string,
  groups: Iterable<[string, readonly GeneratedFile[]]>,
  lock: () => void,
): { changes: TreeChange[]; staged: Staged[] } {
  const changes: TreeChange[] = [];
  const staged: Staged[] = [];
  let at = outDir;
  let half: string | undefined;
  try {
    const umask = currentUmask();
    for (const [lab, labFiles] of groups) {
      at = path.join(outDir, lab);
      // A killed run's leftovers are recovered only under the lock: without it, they may be
      // another writer's tree, in the middle of being built or swapped.
      if (
        fs.lstatSync(path.join(outDir, oldName(lab)), {
          throwIfNoEntry: false,
        }) ||
        fs.lstatSync(path.join(outDir, newName(lab)), { throwIfNoEntry: false })
      ) {
        lock();
        recoverInterrupted(outDir, lab);
      }
      const c = fs.existsSync(at)
        ? compareLab(outDir, lab, labFiles, "write")
        : // Nothing to compare with: every file is new (the common case of a fresh output tree).
          {
            lab,
            added: labFiles.map((f) => `${lab}/${f.path}`),
            changed: [],
            removed: [],
            unchanged: 0,
          };
      changes.push({
        lab,
        added: c.added,
        changed: c.changed,
        removed: c.removed,
        unchanged: c.unchanged,
        ...("kept" in c && c.kept ? { kept: c.kept } : {}),
      });
      if (c.added.length + c.changed.length + c.removed.length === 0) continue;
      lock();
      at = path.join(outDir, newName(lab));
      // Ours once made: an error removes only a staging tree this run made.
      makeDirectory(at, umask);
      half = at;
      staged.push(buildStaging(outDir, lab, labFiles, umask));
      half = undefined;
    }
  } catch (e) {
    // Nothing swapped in yet: drop every new tree, including a half-built one.
    for (const s of staged) removeTreeQuietly(s.staging);
    if (half !== undefined) removeTreeQuietly(half);
    if (e instanceof OutputError) throw e;
    // A failed system call is about the output directory; anything else (a renderer's bug)
    // is an internal error, not the user's to fix.
    if ((e as NodeJS.ErrnoException).syscall) throw describeFsError(e, at);
    throw e;
  }
  return { changes, staged };
}

/**
 * Phase two: swap every new tree in, two renames each. If a rename fails (an immutable
 * directory, say), the labs already swapped are swapped back and no lab changes. The old
 * trees go last; one that cannot be removed (a directory the user made read-only) is no
 * failure of the write: it is returned, per lab, to be reported.
 */
function swapAll(
  outDir: string,
  staged: readonly Staged[],
): Map<string, string> {
  const swapped: (Staged & { old: string | undefined })[] = [];
  try {
    for (const s of staged) {
      let old: string | undefined;
      if (fs.existsSync(s.dir)) {
        old = path.join(outDir, oldName(s.lab));
        fs.renameSync(s.dir, old);
      }
      try {
        fs.renameSync(s.staging, s.dir);
      } catch (e) {
        if (old) fs.renameSync(old, s.dir);
        throw e;
      }
      swapped.push({ ...s, old });
    }
  } catch (e) {
    for (const s of swapped.reverse()) {
      try {
        fs.renameSync(s.dir, s.staging);
        if (s.old) fs.renameSync(s.old, s.dir);
      } catch {
        // Left for recoverInterrupted: the old tree is set aside, the next run restores it.
      }
    }
    for (const s of staged) removeTreeQuietly(s.staging);
    throw describeFsError(e, outDir);
  }
  const leftovers = new Map<string, string>();
  for (const s of swapped) {
    const { lab, old } = s;
    if (!old) continue;
    try {
      removeOldTree(old, s);
    } catch (e) {
      leftovers.set(
        lab,
        e instanceof OutputError ? e.message : describeFsError(e, old).message,
      );
    }
  }
  return leftovers;
}

/**
 * Remove a lab's previous tree after its swap. A file or link of the user's that is new there,
 * or changed, since it was carried over (saved while this run wrote, say) is moved into the new
 * tree instead of removed: only gen-lab's files and the unchanged copies of the user's go.
 */
function removeOldTree(old: string, s: Staged): void {
  removeTree(old, (rel, full) => {
    if (s.owned.has(rel) || s.carried.get(rel) === carriedState(full))
      return false;
    const target = path.join(s.dir, rel);
    makeDirectories(path.dirname(target));
    fs.renameSync(full, target);
    return true;
  });
}

/**
 * The mode of every directory gen-lab makes, whatever the umask: a runner's rootfs overlay is
 * copied onto `/`, and a directory that came out 0700 under `umask 077` would lock
 * systemd-resolved out of its drop-ins (or `/etc` itself, with `cp -a`).
 */
const DIR_MODE = 0o755;

function makeDirectory(dir: string, umask: number): void {
  fs.mkdirSync(dir, { mode: DIR_MODE });
  if ((DIR_MODE & ~umask) !== DIR_MODE) fs.chmodSync(dir, DIR_MODE);
}

/**
 * The process's umask. Reading it means setting it: set it straight back (nothing runs in
 * between). Worker threads may not set it: there every file gets its chmod.
 */
function currentUmask(): number {
  try {
    const mask = process.umask(0o022);
    process.umask(mask);
    return mask;
  } catch {
    return 0o777;
  }
}
