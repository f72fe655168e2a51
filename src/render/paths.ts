import type { LabModel, RunnerModel } from "../model.js";

/** Where each artifact lives in the output tree (../shared/artifacts.md: these paths are contract). */
export const paths = {
  runnerRoot: (lab: LabModel, runner: RunnerModel) =>
    `${lab.name}/runners/${runner.name}`,
  rootfs: (lab: LabModel, runner: RunnerModel) =>
    `${lab.name}/runners/${runner.name}/rootfs`,
  vpnKeyfile: (lab: LabModel) =>
    `etc/NetworkManager/system-connections/${lab.name}-vpn.nmconnection`,
  uplinkKeyfile: (lab: LabModel) =>
    `etc/NetworkManager/system-connections/${lab.name}-uplink.nmconnection`,
  dispatcher: (lab: LabModel) =>
    `etc/NetworkManager/dispatcher.d/90-gen-lab-${lab.name}`,
  sysctl: (lab: LabModel) => `etc/sysctl.d/90-gen-lab-${lab.name}.conf`,
  resolved: (lab: LabModel) =>
    `etc/systemd/resolved.conf.d/90-gen-lab-${lab.name}.conf`,
  secretsLoader: (lab: LabModel) =>
    `usr/local/sbin/gen-lab-${lab.name}-load-secrets`,
  workerUserData: (lab: LabModel, runner: RunnerModel) =>
    `${lab.name}/runners/${runner.name}/worker-user-data.yaml`,
  /** The runner's own cloud-config, which installs its rootfs and brings it up at first boot. */
  runnerUserData: (lab: LabModel, runner: RunnerModel) =>
    `${lab.name}/runners/${runner.name}/user-data.yaml`,
  runnerConfig: (lab: LabModel, runner: RunnerModel) =>
    `${lab.name}/runners/${runner.name}/gitlab-runner/config.toml`,
  /** Under rootfs: the script that fetches the runner's credentials and starts it, and its unit. */
  bootScript: (lab: LabModel) => `usr/local/sbin/gen-lab-${lab.name}-boot`,
  bootUnit: (lab: LabModel) =>
    `etc/systemd/system/gen-lab-${lab.name}-boot.service`,
  /** Under rootfs: the tunnel keeper and its unit (the tunnel from boot on, back after any drop). */
  tunnelKeeper: (lab: LabModel) => `usr/local/sbin/gen-lab-${lab.name}-tunnel`,
  tunnelUnit: (lab: LabModel) =>
    `etc/systemd/system/gen-lab-${lab.name}-tunnel.service`,
  /** Where the boot script finds config.toml (token still to fill in) and the workers' user data. */
  configTemplate: (lab: LabModel) => `/etc/gen-lab/${lab.name}/config.toml.in`,
  workerUserDataOnRunner: (lab: LabModel) =>
    `/etc/gen-lab/${lab.name}/worker-user-data.yaml`,
  terraform: (lab: LabModel) => `${lab.name}/terraform/${lab.name}.tf.json`,
  pipelineData: (lab: LabModel) => `${lab.name}/pipeline-data/${lab.name}.yaml`,
  kubernetes: (lab: LabModel) =>
    `${lab.name}/kubernetes/${lab.name}-trigger.yaml`,
  readme: (lab: LabModel) => `${lab.name}/README.md`,
  manifest: (lab: LabModel) => `${lab.name}/.gen-lab-manifest.json`,
} as const;
