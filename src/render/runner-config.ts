import { stringify } from "smol-toml";
import { generatedHeader, MODE_SECRET, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { paths } from "./paths.js";

/** What the boot script replaces in config.toml with values it reads from SSM at boot. */
export const PLACEHOLDERS = {
  token: "@RUNNER_TOKEN@",
  workerSubnet: "@WORKER_SUBNET_ID@",
} as const;

/** The fleeting plugin for AWS, major version 1 (installed by `gitlab-runner fleeting install`). */
export const FLEETING_PLUGIN = "aws:1";

/** `20m` as seconds, for docker+machine's IdleTime. */
function seconds(duration: string): number {
  const [, h = "0", m = "0", s = "0"] =
    /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration)!;
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

/**
 * gitlab-runner's config.toml for one runner as data: one `[[runners]]` entry for the lab's
 * GitLab, its workers autoscaled in the runner's own zone. Keys are gitlab-runner's own
 * (common/config.go); the token and, for docker+machine, the worker subnet's id are
 * placeholders the boot script fills in. Pure.
 */
export function runnerConfig(lab: LabModel, runner: RunnerModel): object {
  const w = lab.workers;
  const machine = w.executor === "docker+machine";
  const concurrent = w.maxInstances * (machine ? 1 : w.capacityPerInstance);
  const zone = runner.zone.slice(-1);
  return {
    concurrent,
    runners: [
      {
        name: `${lab.name}-${runner.name}`,
        url: lab.pipeline.gitlabUrl,
        token: PLACEHOLDERS.token,
        executor: w.executor,
        limit: concurrent,
        docker: { image: w.image },
        ...(machine
          ? {
              machine: {
                IdleCount: w.idleCount,
                IdleTime: seconds(w.idleTime),
                MaxBuilds: w.maxUseCount,
                MachineDriver: "amazonec2",
                MachineName: runner.names.machine,
                MachineOptions: [
                  `amazonec2-region=${lab.aws.region}`,
                  `amazonec2-zone=${zone}`,
                  `amazonec2-vpc-id=${lab.aws.vpcId}`,
                  `amazonec2-subnet-id=${PLACEHOLDERS.workerSubnet}`,
                  "amazonec2-private-address-only=true",
                  "amazonec2-use-private-address=true",
                  `amazonec2-security-group=${lab.names.workersSecurityGroup}`,
                  // docker-machine would otherwise open 22 and 2376 to the world in the group.
                  "amazonec2-security-group-readonly=true",
                  `amazonec2-userdata=${paths.workerUserDataOnRunner(lab)}`,
                  `amazonec2-iam-instance-profile=${lab.names.workersRole}`,
                  `amazonec2-ami=${w.ami}`,
                  `amazonec2-instance-type=${w.instanceType}`,
                  `amazonec2-ssh-user=${w.sshUser}`,
                  `amazonec2-root-size=${w.rootVolumeSize}`,
                  "amazonec2-volume-type=gp3",
                  "amazonec2-encrypt-ebs-volume=true",
                  "amazonec2-metadata-token=required",
                  "amazonec2-metadata-token-response-hop-limit=1",
                ],
              },
            }
          : {
              autoscaler: {
                plugin: FLEETING_PLUGIN,
                capacity_per_instance: w.capacityPerInstance,
                max_use_count: w.maxUseCount,
                max_instances: w.maxInstances,
                plugin_config: { name: runner.names.workers },
                // The runner reaches its workers at their private address: they have no other.
                connector_config: {
                  username: w.sshUser,
                  use_external_addr: false,
                },
                policy: [{ idle_count: w.idleCount, idle_time: w.idleTime }],
              },
            }),
      },
    ],
  };
}

/** `runners/<runner>/gitlab-runner/config.toml`: what the runner's user data installs (0600: it gets the token). */
export function renderRunnerConfig(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile {
  return {
    path: paths.runnerConfig(lab, runner),
    mode: MODE_SECRET,
    contents: `# ${generatedHeader(lab.sourceName, `runner ${runner.name}`)}\n${stringify(runnerConfig(lab, runner))}\n`,
  };
}
