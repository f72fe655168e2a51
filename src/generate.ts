import { hash } from "node:crypto";
import {
  byPath,
  codePointOrder,
  MODE_PUBLIC,
  type GeneratedFile,
} from "./file.js";
import type { LabModel, RunnerModel } from "./model.js";
import { renderRunnerResolved, renderSysctl } from "./render/drop-ins.js";
import { renderDispatcher } from "./render/dispatcher.js";
import { renderKeyfiles } from "./render/nm-keyfiles.js";
import { renderKubernetes } from "./render/kubernetes.js";
import { renderLabReadme } from "./render/lab-readme.js";
import { renderLoadSecrets } from "./render/load-secrets.js";
import { paths } from "./render/paths.js";
import { renderPipelineData, triggerYaml } from "./render/pipeline-data.js";
import { renderTerraform } from "./render/terraform.js";
import { renderWorkerUserData } from "./render/worker-user-data.js";

/** What one runner gets: its rootfs overlay and its workers' user data. */
function renderRunner(lab: LabModel, runner: RunnerModel): GeneratedFile[] {
  return [
    ...renderKeyfiles(lab, runner),
    renderDispatcher(lab, runner),
    renderSysctl(lab, runner),
    renderRunnerResolved(lab, runner),
    renderWorkerUserData(lab, runner),
    ...renderLoadSecrets(lab, runner),
  ];
}

/** Files that exist once per lab. The trigger YAML is made once: two files carry it. */
function renderLabFiles(lab: LabModel): GeneratedFile[] {
  const trigger = triggerYaml(lab);
  return [
    ...renderTerraform(lab),
    ...renderPipelineData(lab, trigger),
    ...renderKubernetes(lab, trigger),
    ...renderLabReadme(lab),
  ];
}

/** Every file of one lab, sorted by path, ending with its manifest. Pure. */
export function generateLab(lab: LabModel): GeneratedFile[] {
  const files = [
    ...lab.runners.flatMap((r) => renderRunner(lab, r)),
    ...renderLabFiles(lab),
  ].sort(byPath);
  return [...files, renderManifest(lab, files)].sort(byPath);
}

/** Every file of a set of labs (already validated together), sorted by path. Pure. */
export function generate(
  labs: LabModel | readonly LabModel[],
): GeneratedFile[] {
  const list = Array.isArray(labs)
    ? (labs as readonly LabModel[])
    : [labs as LabModel];
  return labsInPathOrder(list).flatMap(generateLab);
}

/**
 * Labs in the order of their files' paths. Every path of a lab starts with `<lab>/` and no lab
 * name holds a `/`, so joining the labs' own sorted file lists in this order gives one sorted
 * list, without sorting every file of every lab again.
 */
export function labsInPathOrder(labs: readonly LabModel[]): LabModel[] {
  return [...labs].sort((a, b) => codePointOrder(`${a.name}/`, `${b.name}/`));
}

/** The manifest's entry for one file; paths relative to the lab directory. */
export interface ManifestEntry {
  readonly path: string;
  readonly mode: string;
  readonly sha256: string;
}

export interface Manifest {
  readonly generator: "gen-lab";
  readonly lab: string;
  readonly files: readonly ManifestEntry[];
}

export const MANIFEST_NAME = ".gen-lab-manifest.json";

export function sha256(contents: string): string {
  // The one-shot form: a manifest hashes every file, and a Hash object per file costs more than the hashing.
  return hash("sha256", contents, "hex");
}

function renderManifest(
  lab: LabModel,
  files: readonly GeneratedFile[],
): GeneratedFile {
  const prefix = `${lab.name}/`;
  const manifest: Manifest = {
    generator: "gen-lab",
    lab: lab.name,
    files: files.map((f) => ({
      path: f.path.slice(prefix.length),
      mode: f.mode.toString(8).padStart(4, "0"),
      sha256: sha256(f.contents),
    })),
  };
  return {
    path: paths.manifest(lab),
    mode: MODE_PUBLIC,
    contents: `${JSON.stringify(manifest, null, 2)}\n`,
  };
}
