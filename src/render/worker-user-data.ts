import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { toYaml } from "./yaml.js";
import { workerResolvedConf } from "./drop-ins.js";
import { paths } from "./paths.js";

/**
 * The cloud-config of the workers a runner spawns (the launch template's user data, or
 * docker-machine's amazonec2-userdata): systemd-resolved sends the intranet's names to that
 * runner. A docker-autoscaler worker also gets Docker if its image lacks it, with the user the
 * runner connects as in the docker group; docker-machine installs Docker itself.
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
    runcmd: [
      ["systemctl", "restart", "systemd-resolved.service"],
      ...(lab.workers.executor === "docker-autoscaler"
        ? [
            [
              "sh",
              "-c",
              "command -v docker >/dev/null 2>&1 || dnf install -y docker || dnf install -y moby-engine || { apt-get update && apt-get install -y docker.io; }",
            ],
            ["systemctl", "enable", "--now", "docker.service"],
            ["usermod", "-aG", "docker", lab.workers.sshUser],
          ]
        : []),
    ],
  };
  return {
    path: paths.workerUserData(lab, runner),
    mode: MODE_PUBLIC,
    // cloud-init recognises user data by its first line.
    contents: `#cloud-config\n# ${generatedHeader(lab.sourceName, `workers of runner ${runner.name}`)}\n${toYaml(config)}`,
  };
}
