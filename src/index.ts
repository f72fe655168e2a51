/**
 * gen-lab as a library: load labs, generate their files, write or check an output tree.
 *
 * ```ts
 * import { loadLabs, generate, writeTree } from "gen-lab";
 * writeTree("out", generate(loadLabs(["labs/foo.yaml"])));
 * ```
 */
export {
  LabError,
  formatDiagnostic,
  type Diagnostic,
  type Severity,
} from "./diagnostics.js";
export { checkTree, OutputError, writeTree, type TreeChange } from "./emit.js";
export type { GeneratedFile } from "./file.js";
export {
  generate,
  MANIFEST_NAME,
  type Manifest,
  type ManifestEntry,
} from "./render/generate.js";
export {
  checkLabs,
  parseLab,
  parseLabs,
  type CheckResult,
  type LabText,
} from "./load.js";
export type {
  AwsModel,
  EgressModel,
  LabModel,
  PipelineModel,
  RunnerModel,
  TunnelModel,
  ZoneModel,
} from "./model.js";
export { checkLabFiles, loadLabs } from "./read-labs.js";
export type { LabInput } from "./schema.js";
