/**
 * The one library module that touches the disk: it reads lab files and writes or checks
 * output trees. Everything else is pure.
 */
import { createTwoFilesPatch } from "diff";
import * as fs from "node:fs";
import * as path from "node:path";
import type { GeneratedFile } from "./file.js";
import {
  generateLab,
  labsInPathOrder,
  MANIFEST_NAME,
  type Manifest,
} from "./generate.js";
import { checkLabs, labsOrThrow, type CheckResult } from "./load.js";
import type { Diagnostic } from "./diagnostics.js";
import type { LabModel } from "./model.js";
import { MAX_LAB_BYTES } from "./source.js";

/** An error about a lab file that could not be read, at its first line. */
function unreadable(file: string, message: string, hint: string): Diagnostic {
  return {
    severity: "error",
    file,
    line: 1,
    column: 1,
    path: "",
    message,
    hint,
  };
}

/**
 * The bytes of one lab file, or why not. Opened without blocking and checked before reading:
 * a FIFO would wait forever for a writer and a device like /dev/zero never ends.
 */
function readLabFile(file: string): Uint8Array | Diagnostic {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? unreadable(
          file,
          "no such file",
          "check the path; labs usually live in labs/<name>.yaml",
        )
      : unreadable(
          file,
          `cannot read: ${code ?? String(e)}`,
          "give the path of a readable lab YAML file",
        );
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory())
      return unreadable(
        file,
        "is a directory, not a lab file",
        "give the lab files themselves, e.g. labs/*.yaml",
      );
    if (!st.isFile())
      return unreadable(
        file,
        "is not a regular file (a FIFO, socket or device)",
        "give the path of a lab YAML file",
      );
    if (st.size > MAX_LAB_BYTES)
      return unreadable(
        file,
        `file is ${st.size} bytes, more than a lab file may be (${MAX_LAB_BYTES} bytes)`,
        "a lab file describes one lab in a few kilobytes; check that this is the right file",
      );
    return fs.readFileSync(fd);
  } catch (e) {
    return unreadable(
      file,
      `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
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
  const seen = new Set<string>();
  for (const file of files) {
    let real = path.resolve(file);
    try {
      real = fs.realpathSync(file);
    } catch {
      // Reported by readLabFile.
    }
    if (seen.has(real)) continue;
    seen.add(real);
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
 * its files relative to its directory, rendered one lab at a time: a run over many labs holds
 * one lab's output at once, not all of it.
 */
function* renderedLabs(
  labs: readonly LabModel[],
): Generator<[string, GeneratedFile[]]> {
  for (const lab of labsInPathOrder(labs)) {
    const prefix = `${lab.name}/`.length;
    yield [
      lab.name,
      generateLab(lab).map((f) => ({ ...f, path: f.path.slice(prefix) })),
    ];
  }
}

const oldName = (lab: string) => `.${lab}.gen-lab-old`;
const newName = (lab: string) => `.${lab}.gen-lab-new`;

const isDirectory = (p: string): boolean => {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
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
 * times faster.
 */
function removeTree(target: string): void {
  try {
    if (!fs.lstatSync(target).isDirectory()) {
      fs.unlinkSync(target);
      return;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  removeDirectory(target);
}

/** removeTree while handling another error: that error is the one to report. */
function removeTreeQuietly(target: string): void {
  try {
    removeTree(target);
  } catch {
    // The next run removes what is left (recoverInterrupted).
  }
}

function removeDirectory(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    // Dirent types come from lstat: a link to a directory is not a directory here.
    if (e.isDirectory()) removeDirectory(full);
    else fs.unlinkSync(full);
  }
  fs.rmdirSync(dir);
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

/** The paths a lab directory's manifest lists (only safe ones); none without a manifest. */
function readManifestPaths(dir: string): string[] {
  let data: Partial<Manifest> | null;
  try {
    data = JSON.parse(
      fs.readFileSync(path.join(dir, MANIFEST_NAME), "utf8"),
    ) as Partial<Manifest> | null;
  } catch {
    return [];
  }
  if (data?.generator !== "gen-lab" || !Array.isArray(data.files)) return [];
  return data.files
    .map((e: unknown) =>
      typeof e === "object" && e !== null
        ? (e as { path?: unknown }).path
        : undefined,
    )
    .filter(isSafeRelative);
}

/** The file at `rel` below `dir` if it is a regular file reached without any symbolic link. */
function readInside(
  dir: string,
  rel: string,
): { contents: Buffer; mode: number } | undefined {
  let at = dir;
  const segments = rel.split("/");
  for (const seg of segments.slice(0, -1)) {
    at = path.join(at, seg);
    try {
      if (!fs.lstatSync(at).isDirectory()) return undefined;
    } catch {
      return undefined;
    }
  }
  return readIfExists(path.join(dir, rel));
}

/** Every regular file below dir, as POSIX paths relative to it. */
function listFiles(dir: string, base = ""): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, base), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const rel = base === "" ? e.name : `${base}/${e.name}`;
    if (e.isDirectory()) return listFiles(dir, rel);
    return e.isFile() || e.isSymbolicLink() ? [rel] : [];
  });
}

function readIfExists(
  file: string,
): { contents: Buffer; mode: number } | undefined {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile()) return undefined;
    return { contents: fs.readFileSync(file), mode: st.mode & 0o7777 };
  } catch {
    return undefined;
  }
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
): TreeChange & { patches: string[] } {
  const exactModes = purpose === "write";
  const withPatches = purpose === "check";
  const dir = labDirectory(outDir, lab);
  const added: string[] = [];
  const changed: string[] = [];
  const patches: string[] = [];
  let unchanged = 0;
  for (const f of files) {
    const onDisk = readIfExists(path.join(dir, f.path));
    const rel = `${lab}/${f.path}`;
    if (!onDisk) {
      added.push(rel);
      if (withPatches)
        patches.push(
          createTwoFilesPatch("/dev/null", `b/${rel}`, "", f.contents, "", "", {
            context: 3,
          }),
        );
      continue;
    }
    const old = onDisk.contents.toString("utf8");
    // Version control keeps only the executable bit, so a fresh checkout is compared on that alone.
    const modeDiffers = exactModes
      ? onDisk.mode !== f.mode
      : ((onDisk.mode & 0o111) !== 0) !== ((f.mode & 0o111) !== 0);
    if (old === f.contents && !modeDiffers) {
      unchanged++;
      continue;
    }
    changed.push(rel);
    if (!withPatches) continue;
    let patch =
      old === f.contents
        ? ""
        : createTwoFilesPatch(`a/${rel}`, `b/${rel}`, old, f.contents, "", "", {
            context: 3,
          });
    if (modeDiffers)
      patch = `mode of ${rel}: ${onDisk.mode.toString(8).padStart(4, "0")} -> ${f.mode.toString(8).padStart(4, "0")}\n${patch}`;
    patches.push(patch);
  }
  const generated = new Set(files.map((f) => f.path));
  const removed: string[] = [];
  for (const p of readManifestPaths(dir)) {
    if (generated.has(p)) continue;
    const onDisk = readInside(dir, p);
    if (!onDisk) continue;
    const rel = `${lab}/${p}`;
    removed.push(rel);
    if (withPatches)
      patches.push(
        createTwoFilesPatch(
          `a/${rel}`,
          "/dev/null",
          onDisk.contents.toString("utf8"),
          "",
          "",
          "",
          { context: 3 },
        ),
      );
  }
  return { lab, added, changed, removed, unchanged, patches };
}

/** `--check`: what writing `files` would change, with a unified diff. Writes nothing. */
export function checkTree(
  outDir: string,
  files: readonly GeneratedFile[],
): { changes: TreeChange[]; diff: string } {
  const groups = byLab(files);
  checkOutputDirectory(outDir, [...groups.keys()]);
  return checkGroups(outDir, groups);
}

/** {@link checkTree} for labs, each rendered only when it is compared. */
export function checkLabTrees(
  outDir: string,
  labs: readonly LabModel[],
): { changes: TreeChange[]; diff: string } {
  checkOutputDirectory(
    outDir,
    labs.map((l) => l.name),
  );
  return checkGroups(outDir, renderedLabs(labs));
}

function checkGroups(
  outDir: string,
  groups: Iterable<[string, readonly GeneratedFile[]]>,
): { changes: TreeChange[]; diff: string } {
  const changes: TreeChange[] = [];
  const patches: string[] = [];
  for (const [lab, labFiles] of groups) {
    const c = compareLab(outDir, lab, labFiles, "check");
    changes.push({
      lab: c.lab,
      added: c.added,
      changed: c.changed,
      removed: c.removed,
      unchanged: c.unchanged,
    });
    patches.push(...c.patches);
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
  const groups = byLab(files);
  return writeGroups(outDir, groups, [...groups.keys()]);
}

/**
 * {@link writeTree} for labs, each rendered only when it is written: memory stays that of one
 * lab's output however many labs there are. The labs are validated together before
 * (checkLabs), so rendering cannot fail halfway on bad input.
 */
export function writeLabTrees(
  outDir: string,
  labs: readonly LabModel[],
): TreeChange[] {
  return writeGroups(
    outDir,
    renderedLabs(labs),
    labs.map((l) => l.name),
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

/** What the errno of a failed file system call means for the user. */
function describeFsError(e: unknown, target: string): OutputError {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  const reasons: Record<string, [string, string]> = {
    EACCES: [
      "permission denied",
      "choose an output directory you may write to",
    ],
    EPERM: [
      "operation not permitted",
      "choose an output directory you may write to",
    ],
    EROFS: [
      "the file system is read-only",
      "choose a writable output directory",
    ],
    ENOSPC: ["no space left on the device", "free some space and run again"],
    EDQUOT: ["disk quota exceeded", "free some space and run again"],
    ENOTDIR: [
      "a part of the path is a file, not a directory",
      "check the -o path",
    ],
    EEXIST: ["something is in the way", "remove it or choose another -o"],
    ELOOP: ["too many levels of symbolic links", "check the -o path"],
    ENAMETOOLONG: ["the path is too long", "choose a shorter -o path"],
  };
  const [reason, hint] = reasons[code] ?? [
    code || String(e),
    "check the output directory",
  ];
  return new OutputError(`cannot write ${target}: ${reason}`, hint);
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
    const lst = fs.lstatSync(dir, { throwIfNoEntry: false });
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
}

/**
 * Build one lab's new tree beside its directory (`.<lab>.gen-lab-new`): each directory made
 * once, each file created exclusively; then the files of the old tree its manifest does not
 * list, which gen-lab did not write, carried over.
 */
function buildStaging(
  outDir: string,
  lab: string,
  labFiles: readonly GeneratedFile[],
  umask: number,
): Staged {
  const dir = path.join(outDir, lab);
  const staging = path.join(outDir, newName(lab));
  const dirs = new Set<string>();
  for (const f of labFiles) {
    for (let i = f.path.indexOf("/"); i >= 0; i = f.path.indexOf("/", i + 1))
      dirs.add(f.path.slice(0, i));
  }
  fs.mkdirSync(staging);
  for (const d of [...dirs].sort()) fs.mkdirSync(path.join(staging, d));
  for (const f of labFiles) {
    const target = path.join(staging, f.path);
    fs.writeFileSync(target, f.contents, { mode: f.mode, flag: "wx" });
    // The contract fixes modes exactly; only a umask that narrows this one needs a chmod.
    if ((f.mode & ~umask) !== f.mode) fs.chmodSync(target, f.mode);
  }

  const listed = new Set(readManifestPaths(dir));
  const generated = new Set(labFiles.map((f) => f.path));
  for (const rel of listFiles(dir)) {
    if (listed.has(rel) || generated.has(rel)) continue;
    const target = path.join(staging, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.cpSync(path.join(dir, rel), target, {
      preserveTimestamps: true,
      verbatimSymlinks: true,
    });
  }
  return { lab, dir, staging };
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
  const changes: TreeChange[] = [];
  const staged: Staged[] = [];
  let at = outDir;
  try {
    fs.mkdirSync(outDir, { recursive: true });
    const umask = currentUmask();
    for (const [lab, labFiles] of groups) {
      at = path.join(outDir, lab);
      recoverInterrupted(outDir, lab);
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
      });
      if (c.added.length + c.changed.length + c.removed.length === 0) continue;
      at = path.join(outDir, newName(lab));
      staged.push(buildStaging(outDir, lab, labFiles, umask));
    }
  } catch (e) {
    // Nothing swapped in yet: drop every new tree, including a half-built one.
    for (const s of staged) removeTreeQuietly(s.staging);
    if (at.endsWith(".gen-lab-new")) removeTreeQuietly(at);
    if (e instanceof OutputError) throw e;
    if ((e as NodeJS.ErrnoException).code) throw describeFsError(e, at);
    throw e;
  }

  const setAside: string[] = [];
  for (const { lab, dir, staging } of staged) {
    if (fs.existsSync(dir)) {
      const old = path.join(outDir, oldName(lab));
      fs.renameSync(dir, old);
      setAside.push(old);
    }
    fs.renameSync(staging, dir);
  }
  for (const old of setAside) removeTree(old);
  return changes;
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
