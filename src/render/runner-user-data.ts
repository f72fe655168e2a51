import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { paths } from "./paths.js";
import { bootUnitName } from "./runner-boot.js";
import { toYaml } from "./yaml.js";

/**
 * `runners/<runner>/user-data.yaml`: the cloud-config the runner's instance boots with. It
 * writes every file of the runner's rootfs with its mode, config.toml (token still to fill in)
 * and the workers' user data where the boot script and docker-machine read them, then runs the
 * boot script and enables its unit for later boots. Terraform gzips it into user_data_base64.
 */
export function renderRunnerUserData(
  lab: LabModel,
  runner: RunnerModel,
  rootfs: readonly GeneratedFile[],
  config: GeneratedFile,
  workerUserData: GeneratedFile,
): GeneratedFile {
  const root = `${paths.rootfs(lab, runner)}/`;
  const file = (path: string, mode: number, content: string) => ({
    path,
    owner: "root:root",
    permissions: `0${mode.toString(8)}`,
    content,
  });
  const cloudConfig = {
    write_files: [
      ...rootfs.map((f) =>
        file(`/${f.path.slice(root.length)}`, f.mode, f.contents),
      ),
      file(paths.configTemplate(lab), config.mode, config.contents),
      file(
        paths.workerUserDataOnRunner(lab),
        workerUserData.mode,
        workerUserData.contents,
      ),
    ],
    runcmd: [
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", bootUnitName(lab)],
      [`/${paths.bootScript(lab)}`],
    ],
  };
  return {
    path: paths.runnerUserData(lab, runner),
    mode: MODE_PUBLIC,
    // cloud-init recognises user data by its first line.
    contents: `#cloud-config\n# ${generatedHeader(lab.sourceName, `runner ${runner.name}`)}\n${toYaml(cloudConfig)}`,
  };
}
