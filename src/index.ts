/**
 * gen-lab as a library: load labs, generate their files, write or check an output tree.
 *
 * ```ts
 * import { loadLab, generate, writeTree } from 'gen-lab';
 * const lab = await loadLab('labs/foo.yaml');
 * writeTree('out', generate(lab));
 * ```
 */
export {
  LabError,
  formatDiagnostic,
  type Diagnostic,
  type Severity,
} from "./diagnostics.js";
export {
  checkLabs,
  parseLab,
  parseLabs,
  type CheckResult,
  type LabText,
} from "./load.js";
export {
  checkLabFiles,
  checkLabTrees,
  checkTree,
  loadLab,
  loadLabs,
  OutputError,
  recoverInterrupted,
  writeLabTrees,
  writeTree,
  type TreeChange,
} from "./emit.js";
export {
  generate,
  generateLab,
  MANIFEST_NAME,
  type Manifest,
  type ManifestEntry,
} from "./generate.js";
export type { GeneratedFile } from "./file.js";
export type {
  AwsModel,
  EgressModel,
  LabModel,
  PipelineModel,
  RunnerModel,
  TunnelModel,
  ZoneModel,
} from "./model.js";
export type { LabInput } from "./schema.js";
