import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { toYaml } from "./yaml.js";
import { workerResolvedConf } from "./drop-ins.js";
import { paths } from "./paths.js";

/**
 * The cloud-config docker-machine passes to the workers a runner spawns (amazonec2-userdata):
 * it makes systemd-resolved send the intranet's names to that runner.
 */
export function renderWorkerUserData(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile {
  const config = {
    write_files: [
      {
        path: `/etc/systemd/resolved.conf.d/90-gen-lab-${lab.name}.conf`,
        owner: "root:root",
        permissions: "0644",
        content: workerResolvedConf(lab, runner),
      },
    ],
    runcmd: [["systemctl", "restart", "systemd-resolved.service"]],
  };
  return {
    path: paths.workerUserData(lab, runner),
    mode: MODE_PUBLIC,
    // cloud-init recognises user data by its first line.
    contents: `#cloud-config\n# ${generatedHeader(lab.sourceName, `workers of runner ${runner.name}`)}\n${toYaml(config)}`,
  };
}
