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

/** Read lab files and check them together. Unreadable files become diagnostics, like any bad input. */
export function checkLabFiles(files: readonly string[]): CheckResult {
  const texts: { file: string; text: Uint8Array }[] = [];
  const unreadable: Diagnostic[] = [];
  for (const file of files) {
    try {
      texts.push({ file, text: fs.readFileSync(file) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      unreadable.push({
        severity: "error",
        file,
        line: 1,
        column: 1,
        path: "",
        message:
          code === "ENOENT"
            ? "no such file"
            : code === "EISDIR"
              ? "is a directory, not a lab file"
              : `cannot read: ${code ?? String(e)}`,
        hint:
          code === "ENOENT"
            ? "check the path; labs usually live in labs/<name>.yaml"
            : "give the path of a readable lab YAML file",
      });
    }
  }
  const result = checkLabs(texts);
  if (unreadable.length === 0) return result;
  return {
    labs: undefined,
    diagnostics: [...unreadable, ...result.diagnostics],
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

/**
 * Finish or undo a swap that a killed run left half done: if the lab directory is missing
 * but the previous one was set aside, put it back; drop leftovers of unfinished writes.
 */
export function recoverInterrupted(outDir: string, lab: string): void {
  const dir = path.join(outDir, lab);
  const old = path.join(outDir, oldName(lab));
  if (fs.existsSync(old)) {
    if (fs.existsSync(dir)) removeTree(old);
    else fs.renameSync(old, dir);
  }
  removeTree(path.join(outDir, newName(lab)));
}

/**
 * Remove a directory tree; nothing if it does not exist. Node 20's recursive rmSync spends
 * most of a large rewrite on bookkeeping; a plain depth-first unlink is several times faster.
 */
function removeTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) removeTree(full);
    else fs.unlinkSync(full);
  }
  fs.rmdirSync(dir);
}

function readManifest(dir: string): Manifest | undefined {
  try {
    const data = JSON.parse(
      fs.readFileSync(path.join(dir, MANIFEST_NAME), "utf8"),
    ) as Manifest;
    return data.generator === "gen-lab" && Array.isArray(data.files)
      ? data
      : undefined;
  } catch {
    return undefined;
  }
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
  const dir = path.join(outDir, lab);
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
  const removed = (readManifest(dir)?.files ?? [])
    .map((e) => e.path)
    .filter(
      (p) => !generated.has(p) && readIfExists(path.join(dir, p)) !== undefined,
    )
    .map((p) => `${lab}/${p}`);
  for (const rel of withPatches ? removed : []) {
    const old = fs.readFileSync(path.join(outDir, rel), "utf8");
    patches.push(
      createTwoFilesPatch(`a/${rel}`, "/dev/null", old, "", "", "", {
        context: 3,
      }),
    );
  }
  return { lab, added, changed, removed, unchanged, patches };
}

/** `--check`: what writing `files` would change, with a unified diff. Writes nothing. */
export function checkTree(
  outDir: string,
  files: readonly GeneratedFile[],
): { changes: TreeChange[]; diff: string } {
  return checkGroups(outDir, byLab(files));
}

/** {@link checkTree} for labs, each rendered only when it is compared. */
export function checkLabTrees(
  outDir: string,
  labs: readonly LabModel[],
): { changes: TreeChange[]; diff: string } {
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
 * killed between them is repaired by the next run (recoverInterrupted). Files of the old
 * tree that its manifest does not list were not written by gen-lab and are carried over;
 * files it lists that the lab no longer produces are dropped. An unchanged lab is not touched.
 */
export function writeTree(
  outDir: string,
  files: readonly GeneratedFile[],
): TreeChange[] {
  return writeGroups(outDir, byLab(files));
}

/**
 * {@link writeTree} for labs, each rendered only when it is written: memory stays that of one
 * lab's output however many labs there are. Labs are written one after another, each swapped
 * in whole; they are validated together before (checkLabs), so rendering cannot fail halfway
 * on bad input.
 */
export function writeLabTrees(
  outDir: string,
  labs: readonly LabModel[],
): TreeChange[] {
  return writeGroups(outDir, renderedLabs(labs));
}

function writeGroups(
  outDir: string,
  groups: Iterable<[string, readonly GeneratedFile[]]>,
): TreeChange[] {
  fs.mkdirSync(outDir, { recursive: true });
  const umask = currentUmask();
  const changes: TreeChange[] = [];
  for (const [lab, labFiles] of groups) {
    recoverInterrupted(outDir, lab);
    const dir = path.join(outDir, lab);
    const previous = readManifest(dir);
    const c = fs.existsSync(dir)
      ? compareLab(outDir, lab, labFiles, "write")
      : // Nothing to compare with: every file is new (the common case of a fresh output tree).
        {
          lab,
          added: labFiles.map((f) => `${lab}/${f.path}`),
          changed: [],
          removed: [],
          unchanged: 0,
        };
    const change: TreeChange = {
      lab,
      added: c.added,
      changed: c.changed,
      removed: c.removed,
      unchanged: c.unchanged,
    };
    changes.push(change);
    if (
      c.added.length === 0 &&
      c.changed.length === 0 &&
      c.removed.length === 0
    )
      continue;

    const staging = path.join(outDir, newName(lab));
    // recoverInterrupted removed any leftover: the staging tree starts empty, so each directory
    // is made once, parents first, and each file is created exclusively.
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

    const listed = new Set(previous?.files.map((e) => e.path) ?? []);
    const generated = new Set(labFiles.map((f) => f.path));
    for (const rel of listFiles(dir)) {
      if (listed.has(rel) || generated.has(rel)) continue;
      const src = path.join(dir, rel);
      const target = path.join(staging, rel);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.cpSync(src, target, {
        preserveTimestamps: true,
        verbatimSymlinks: true,
      });
    }

    if (fs.existsSync(dir)) {
      const old = path.join(outDir, oldName(lab));
      fs.renameSync(dir, old);
      fs.renameSync(staging, dir);
      removeTree(old);
    } else {
      fs.renameSync(staging, dir);
    }
  }
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
