import {
  generatedHeader,
  MODE_EXEC,
  MODE_PUBLIC,
  type GeneratedFile,
} from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { serializeKeyfile, serviceUnit } from "./keyfile.js";
import { paths } from "./paths.js";
import { PLACEHOLDERS } from "./runner-config.js";
import { renderTemplate } from "./templates.js";
import { tunnelUnitName } from "./tunnel-keeper.js";

/** GitLab's fork of docker-machine that gitlab-runner's documentation installs (docker+machine only). */
export const DOCKER_MACHINE_VERSION = "v0.16.2-gitlab.48";

/** Where `gitlab-runner fleeting install` puts the AWS plugin, and where the runner finds it. */
export const pluginPath = (lab: LabModel) =>
  `/var/lib/gen-lab/${lab.name}/fleeting-plugins`;

/** The unit that runs the boot script at every boot after the first. */
export const bootUnitName = (lab: LabModel) =>
  `gen-lab-${lab.name}-boot.service`;

/**
 * The runner's boot script, its unit, and the drop-ins it relies on: gitlab-runner's unit
 * environment (the plugin's path and the region for the AWS plugin) and NetworkManager handing
 * DNS to systemd-resolved.
 */
export function renderRunnerBoot(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile[] {
  const root = paths.rootfs(lab, runner);
  const header = generatedHeader(lab.sourceName, `runner ${runner.name}`);
  const autoscaler = lab.workers.executor === "docker-autoscaler";
  const loader =
    runner.tunnel.type === "wireguard" || runner.tunnel.type === "ipsec"
      ? `/${paths.secretsLoader(lab)}`
      : "";
  const script = renderTemplate("runner-boot.sh.njk", {
    header,
    lab: lab.name,
    runner: runner.name,
    unit: bootUnitName(lab),
    region: lab.aws.region,
    configTemplate: paths.configTemplate(lab),
    tokenParameter: runner.names.tokenParameter,
    subnetParameter: runner.names.subnetParameter,
    runnerVersion: lab.workers.gitlabRunnerVersion,
    dockerMachineVersion: DOCKER_MACHINE_VERSION,
    uplinkUuid: runner.connections.uplinkUuid,
    bootScript: `/${paths.bootScript(lab)}`,
    tunnelUnit: tunnelUnitName(lab),
    credentials: runner.credentials,
    secretsLoader: loader,
    autoscaler,
    pluginPath: pluginPath(lab),
    tokenPlaceholder: PLACEHOLDERS.token,
    subnetPlaceholder: PLACEHOLDERS.workerSubnet,
  });
  const unit = serviceUnit(
    header,
    [
      [
        "Description",
        `gen-lab: bring runner ${runner.name} of lab ${lab.name} up`,
      ],
      ["Wants", "network-online.target"],
      ["After", "network-online.target NetworkManager.service"],
    ],
    [
      ["Type", "oneshot"],
      ["ExecStart", `/${paths.bootScript(lab)}`],
    ],
  );
  const runnerEnvironment = serializeKeyfile(
    [header],
    [
      {
        name: "Service",
        entries: [
          ["Environment", `FLEETING_PLUGIN_PATH=${pluginPath(lab)}`],
          ["Environment", `AWS_REGION=${lab.aws.region}`],
        ],
      },
    ],
  );
  const nmDns = serializeKeyfile(
    [header],
    [{ name: "main", entries: [["dns", "systemd-resolved"]] }],
  );
  return [
    {
      path: `${root}/${paths.bootScript(lab)}`,
      mode: MODE_EXEC,
      contents: script,
    },
    {
      path: `${root}/${paths.bootUnit(lab)}`,
      mode: MODE_PUBLIC,
      contents: unit,
    },
    {
      path: `${root}/etc/systemd/system/gitlab-runner.service.d/90-gen-lab-${lab.name}.conf`,
      mode: MODE_PUBLIC,
      contents: runnerEnvironment,
    },
    {
      path: `${root}/etc/NetworkManager/conf.d/90-gen-lab-${lab.name}.conf`,
      mode: MODE_PUBLIC,
      contents: nmDns,
    },
  ];
}
