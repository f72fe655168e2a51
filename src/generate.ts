import { hash } from "node:crypto";
import {
  byPath,
  codePointOrder,
  MODE_PUBLIC,
  type GeneratedFile,
} from "./file.js";
import { validatedModels, type LabModel } from "./model.js";
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

/**
 * The renderers, each making one kind of file for one lab: a runner's files for every runner,
 * then the files that exist once per lab. The trigger YAML is made once: two files carry it.
 */
const RENDERERS: readonly ((lab: LabModel) => GeneratedFile[])[] = [
  (lab) => lab.runners.flatMap((r) => renderKeyfiles(lab, r)),
  (lab) => lab.runners.map((r) => renderDispatcher(lab, r)),
  (lab) => lab.runners.map((r) => renderSysctl(lab, r)),
  (lab) => lab.runners.map((r) => renderRunnerResolved(lab, r)),
  (lab) => lab.runners.map((r) => renderWorkerUserData(lab, r)),
  (lab) => lab.runners.flatMap((r) => renderLoadSecrets(lab, r)),
  renderTerraform,
  (lab) => {
    const trigger = triggerYaml(lab);
    return [
      ...renderPipelineData(lab, trigger),
      ...renderKubernetes(lab, trigger),
    ];
  },
  renderLabReadme,
];

/**
 * Labs rendered together: each kind of file is rendered for all of them before the next kind.
 * Enough labs for one renderer's code and data to stay warm in the CPU's caches, where lab by
 * lab every renderer would evict the others'; few enough that their files are hashed (and so
 * flattened into one string each) while still young, not after V8 has promoted hundreds of
 * labs' half-built strings to the old generation.
 */
const BATCH = 32;

/**
 * The output a batch may hold. A lab of a thousand egress rules makes megabytes: its batches
 * shrink so a caller that writes each lab and drops it holds about this much, not 32 such labs.
 */
const BATCH_BYTES = 16 * 1024 * 1024;

/**
 * Every file of each lab with its manifest, sorted by path: one list per lab, in the order
 * given, rendered a batch at a time (a caller that writes each list and drops it holds one
 * batch's output at once). The first batch is one lab; each next one as many as fit
 * BATCH_BYTES at the last batch's output per lab, at most BATCH. Pure.
 */
export function* generateEach(
  labs: readonly LabModel[],
): Generator<GeneratedFile[], void, undefined> {
  for (let start = 0, size = 1; start < labs.length;) {
    const batch = labs.slice(start, start + size);
    start += batch.length;
    let bytes = 0;
    const perLab = batch.map((): GeneratedFile[] => []);
    for (const render of RENDERERS)
      for (let i = 0; i < batch.length; i++)
        perLab[i]!.push(...render(batch[i]!));
    for (const files of perLab)
      for (const f of files) bytes += f.contents.length;
    size = Math.max(
      1,
      Math.min(BATCH, Math.floor(BATCH_BYTES / (bytes / batch.length || 1))),
    );
    for (let i = 0; i < batch.length; i++) {
      const files = perLab[i]!.sort(byPath);
      // Into its place in path order (its name starts with a dot: first, as a rule).
      const manifest = renderManifest(batch[i]!, files);
      const at = files.findIndex((f) => byPath(manifest, f) < 0);
      files.splice(at < 0 ? files.length : at, 0, manifest);
      perLab[i] = [];
      yield files;
    }
  }
}

/**
 * Every file of one lab with its manifest, sorted by path. Pure. Throws a TypeError for a lab
 * that is not a model from checkLabs, parseLab or loadLab.
 */
export function generateLab(lab: LabModel): GeneratedFile[] {
  return [...generateEach(validatedModels("generateLab()", [lab]))][0]!;
}

/**
 * Every file of a set of labs (validated together), sorted by path. Pure. Throws a TypeError
 * for a lab that is not a model from checkLabs, parseLab or loadLab, or two labs of one name.
 */
export function generate(
  labs: LabModel | readonly LabModel[],
): GeneratedFile[] {
  const list = validatedModels(
    "generate()",
    Array.isArray(labs) ? (labs as readonly unknown[]) : [labs],
  );
  return [...generateEach(labsInPathOrder(list))].flat();
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
