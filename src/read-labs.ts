import * as fs from "node:fs";
import { fileError, type Diagnostic } from "./diagnostics.js";
import {
  checkLabs,
  labsOrThrow,
  type CheckResult,
  type LabText,
} from "./load.js";
import type { LabModel } from "./model.js";
import { MAX_LAB_BYTES } from "./parse.js";

/**
 * The text of a lab file, or why it cannot be read. Only a regular file is read (a FIFO would
 * block, a device never end), and no more of it than a lab may hold.
 */
export function readLabFile(file: string): Uint8Array | Diagnostic {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const stat = fs.fstatSync(fd);
    if (!stat.isFile())
      return fileError(
        file,
        "is not a regular file",
        "give the path of a lab's YAML file",
      );
    const buffer = Buffer.alloc(Math.min(stat.size, MAX_LAB_BYTES + 1));
    return buffer.subarray(0, fs.readSync(fd, buffer, 0, buffer.length, 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fileError(
      file,
      code === "ENOENT"
        ? "no such file"
        : `cannot be read (${code ?? String(e)})`,
      code === "ENOENT" ? "check the path" : "check the file's permissions",
    );
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Read and check lab files given together; a file named twice is read once. Never throws for bad input. */
export function checkLabFiles(files: readonly string[]): CheckResult {
  const texts: LabText[] = [];
  const unreadable: Diagnostic[] = [];
  for (const file of new Set(files)) {
    const text = readLabFile(file);
    if (text instanceof Uint8Array) texts.push({ file, text });
    else unreadable.push(text);
  }
  const result = checkLabs(texts);
  return unreadable.length === 0
    ? result
    : { labs: undefined, diagnostics: [...unreadable, ...result.diagnostics] };
}

/** Read, validate and resolve lab files given together. Throws {@link LabError}; warnings go to `onWarning`. */
export function loadLabs(
  files: readonly string[],
  onWarning?: (d: Diagnostic) => void,
): LabModel[] {
  return labsOrThrow(checkLabFiles(files), onWarning);
}
