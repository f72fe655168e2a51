import { createHash } from "node:crypto";
import { byPath, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { renderRunnerResolved, renderSysctl } from "./drop-ins.js";
import { renderDispatcher } from "./dispatcher.js";
import { renderKeyfiles } from "./nm-keyfiles.js";
import { renderKubernetes } from "./kubernetes.js";
import { renderLabReadme } from "./lab-readme.js";
import { renderLoadSecrets } from "./load-secrets.js";
import { paths } from "./paths.js";
import { renderPipelineData } from "./pipeline-data.js";
import { renderRunnerBoot } from "./runner-boot.js";
import { renderRunnerConfig } from "./runner-config.js";
import { renderRunnerUserData } from "./runner-user-data.js";
import { renderTunnelKeeper } from "./tunnel-keeper.js";
import { renderTerraform } from "./terraform.js";
import { renderWorkerUserData } from "./worker-user-data.js";

/** What a runner's rootfs overlay holds: each renderer makes one kind of file. */
const ROOTFS: readonly ((
  lab: LabModel,
  runner: RunnerModel,
) => GeneratedFile[])[] = [
  renderKeyfiles,
  (lab, r) => [renderDispatcher(lab, r)],
  (lab, r) => [renderSysctl(lab, r), renderRunnerResolved(lab, r)],
  renderLoadSecrets,
  renderRunnerBoot,
  renderTunnelKeeper,
];

/** A runner's files: its rootfs, config.toml, its workers' user data and its own, which holds the others. */
export function renderRunner(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile[] {
  const done = rendered.get(runner);
  if (done?.lab === lab) return [...done.files];
  const rootfs = ROOTFS.flatMap((render) => render(lab, runner));
  const config = renderRunnerConfig(lab, runner);
  const workers = renderWorkerUserData(lab, runner);
  const own = renderRunnerUserData(lab, runner, rootfs, config, workers);
  const files = [...rootfs, config, workers, own];
  rendered.set(runner, { lab, files });
  return [...files];
}

/**
 * A runner's files by its (readonly) model: checking a lab renders them to measure its user
 * data, and generating it would render them again (a third of a cold run, measured).
 */
const rendered = new WeakMap<
  RunnerModel,
  { lab: LabModel; files: readonly GeneratedFile[] }
>();

/** The renderers of the files a lab has once. */
const LAB_RENDERERS: readonly ((lab: LabModel) => GeneratedFile[])[] = [
  renderTerraform,
  renderPipelineData,
  renderKubernetes,
  renderLabReadme,
];

/**
 * Every file of the labs, each lab's manifest among them, sorted by path. Pure: the same labs
 * give the same bytes on any machine. Labs rendered together must have been checked together.
 */
export function generate(
  labs: LabModel | readonly LabModel[],
): GeneratedFile[] {
  const list: readonly LabModel[] = Array.isArray(labs)
    ? labs
    : [labs as LabModel];
  return list
    .flatMap((lab) => {
      const files = [
        ...lab.runners.flatMap((r) => renderRunner(lab, r)),
        ...LAB_RENDERERS.flatMap((render) => render(lab)),
      ];
      return [...files, renderManifest(lab, files)];
    })
    .sort(byPath);
}

/** The manifest's entry for one file; paths relative to the lab directory. */
export interface ManifestEntry {
  readonly path: string;
  readonly mode: string;
  readonly sha256: string;
}

/** `<lab>/.gen-lab-manifest.json`: what gen-lab wrote, so a later run removes only its own files. */
export interface Manifest {
  readonly generator: "gen-lab";
  readonly lab: string;
  readonly files: readonly ManifestEntry[];
}

export const MANIFEST_NAME = ".gen-lab-manifest.json";

export function sha256(contents: string): string {
  return createHash("sha256").update(contents).digest("hex");
}

function renderManifest(
  lab: LabModel,
  files: readonly GeneratedFile[],
): GeneratedFile {
  const manifest: Manifest = {
    generator: "gen-lab",
    lab: lab.name,
    files: [...files].sort(byPath).map((f) => ({
      path: f.path.slice(lab.name.length + 1),
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
