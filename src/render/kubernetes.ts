import { createHash } from "node:crypto";
import type { CronJob } from "kubernetes-types/batch/v1.js";
import type { ConfigMap, EnvVar } from "kubernetes-types/core/v1.js";
import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel } from "../model.js";
import { toYaml } from "./yaml.js";
import { paths } from "./paths.js";
import { triggerYaml } from "./pipeline-data.js";

/**
 * Kubernetes appends an 11-character suffix to a CronJob's name for each Job, and Job names
 * become pod labels (at most 63 characters): so a CronJob name has at most 52.
 */
export const CRONJOB_NAME_MAX = 52;

/** Where the ConfigMap is mounted in the trigger's container. */
export const TRIGGER_CONFIG_DIR = "/etc/gitrepo-trigger";

/** The container's only writable directory (an emptyDir): /tmp, and its HOME. */
export const SCRATCH_DIR = "/tmp";

/** Key of the GitLab token in the Secret the deployer creates (never generated: it is a secret). */
export const GITLAB_TOKEN_KEY = "token";

/**
 * A DNS-1123 label of at most `max` characters. Lab, prefix and environment names already consist
 * of lowercase letters, digits and dashes and start with a letter; only the length can exceed.
 * A long name is cut and gets 8 hex digits of its sha256, so it stays unique and stable.
 */
export function k8sName(name: string, max = CRONJOB_NAME_MAX): string {
  if (name.length <= max) return name;
  const hash = createHash("sha256").update(name, "utf8").digest("hex");
  return `${name.slice(0, max - 9).replace(/-+$/, "")}-${hash.slice(0, 8)}`;
}

/** Names of the lab's trigger objects in the cluster. */
export function triggerNames(lab: LabModel): {
  readonly name: string;
  readonly secret: string;
  readonly configKey: string;
  readonly configPath: string;
  readonly firstRun: string;
} {
  const name = k8sName(`${lab.names.base}-trigger`);
  return {
    name,
    secret: lab.pipeline.tokenSecret,
    configKey: `${lab.name}.yaml`,
    configPath: `${TRIGGER_CONFIG_DIR}/${lab.name}.yaml`,
    /** A Job started by hand from the CronJob (at most 52 + 10 characters: a label value). */
    firstRun: `${name}-first-run`,
  };
}

/**
 * The user and group the trigger runs as: any but root. That the cki-tools image works as an
 * arbitrary non-root user is assumed (docs/pipeline.md); a lab's first run shows it.
 */
export const TRIGGER_UID = 1000;

/**
 * At most this many seconds late, a run is skipped rather than started: less than the shortest
 * schedule validation admits (5 minutes), so a late run never meets the next one.
 */
export const STARTING_DEADLINE_SECONDS = 180;

/**
 * The ConfigMap with the trigger YAML and the CronJob that runs cki_tools.gitrepo_trigger with
 * it, with the environment its documentation marks required (docs/pipeline.md). Pure. `config`
 * is the pipeline-data text, when the caller has already made it.
 */
export function triggerObjects(
  lab: LabModel,
  config = triggerYaml(lab),
): [ConfigMap, CronJob] {
  const n = triggerNames(lab);
  const p = lab.pipeline;
  const labels = {
    "app.kubernetes.io/name": "gitrepo-trigger",
    "app.kubernetes.io/instance": n.name,
    "app.kubernetes.io/component": "pipeline-trigger",
    "app.kubernetes.io/part-of": lab.names.base,
    "app.kubernetes.io/managed-by": "gen-lab",
  };
  const env: EnvVar[] = [
    { name: "PIPELINE_DEFINITION_URL", value: p.definitionUrl },
    { name: "GITLAB_PARENT_PROJECT", value: p.parentProject },
    { name: "GITLAB_URL", value: p.gitlabUrl },
    // The GitLab instance's host -> the name of the variable that holds its token.
    {
      name: "GITLAB_TOKENS",
      value: JSON.stringify({
        [new URL(p.gitlabUrl).hostname]: "GITLAB_TOKEN",
      }),
    },
    {
      name: "GITLAB_TOKEN",
      valueFrom: { secretKeyRef: { name: n.secret, key: GITLAB_TOKEN_KEY } },
    },
    // The one channel for the configuration: GITREPO_TRIGGER_CONFIG would take precedence.
    { name: "GITREPO_TRIGGER_CONFIG_PATH", value: n.configPath },
    { name: "CKI_DEPLOYMENT_ENVIRONMENT", value: p.deploymentEnvironment },
    // WARN, the default, says nothing about what a run did.
    { name: "CKI_LOGGING_LEVEL", value: "INFO" },
    // uid 1000 need not have a home directory in the image, and the root filesystem is read-only.
    { name: "HOME", value: SCRATCH_DIR },
  ];
  const configMap: ConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: n.name, labels },
    data: { [n.configKey]: config },
  };
  const cronJob: CronJob = {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name: n.name, labels },
    spec: {
      schedule: p.schedule,
      // The lab's schedule has no time zone of its own: pin it, or it follows the controller's.
      timeZone: "Etc/UTC",
      // A slow run must not overlap the next one: both would trigger pipelines for the same commits.
      concurrencyPolicy: "Forbid",
      startingDeadlineSeconds: STARTING_DEADLINE_SECONDS,
      // Enough finished runs to read the logs of the last few, failed ones included.
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels },
        spec: {
          // A failed run is not retried: the next scheduled one does the same work.
          backoffLimit: 0,
          // A run stuck on an unanswering git or GitLab server would hold back every later one.
          activeDeadlineSeconds: 1800,
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: "Never",
              // The trigger talks to GitLab only, never to the Kubernetes API.
              automountServiceAccountToken: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: TRIGGER_UID,
                runAsGroup: TRIGGER_UID,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: "gitrepo-trigger",
                  image: p.image,
                  command: ["python3", "-m", "cki_tools.gitrepo_trigger"],
                  env,
                  resources: {
                    requests: { cpu: "100m", memory: "256Mi" },
                    limits: { cpu: "1", memory: "1Gi" },
                  },
                  volumeMounts: [
                    {
                      name: "config",
                      mountPath: TRIGGER_CONFIG_DIR,
                      readOnly: true,
                    },
                    { name: "scratch", mountPath: SCRATCH_DIR },
                  ],
                  securityContext: {
                    runAsNonRoot: true,
                    readOnlyRootFilesystem: true,
                    allowPrivilegeEscalation: false,
                    capabilities: { drop: ["ALL"] },
                  },
                },
              ],
              volumes: [
                { name: "config", configMap: { name: n.name } },
                // git and Python write temporary files: a read-only root has no other place.
                { name: "scratch", emptyDir: { sizeLimit: "1Gi" } },
              ],
            },
          },
        },
      },
    },
  };
  return [configMap, cronJob];
}

/**
 * `<lab>/kubernetes/<lab>-trigger.yaml`: two YAML documents, ConfigMap then CronJob, keys in
 * the order Kubernetes manifests are usually read (apiVersion, kind, metadata, spec).
 */
export function renderKubernetes(
  lab: LabModel,
  config = triggerYaml(lab),
): GeneratedFile[] {
  const n = triggerNames(lab);
  const header = [
    `# ${generatedHeader(lab.sourceName, "gitrepo-trigger CronJob")}`,
    `# Needs the Secret ${n.secret} with the GitLab token under key "${GITLAB_TOKEN_KEY}", e.g.`,
    `#   kubectl create secret generic ${n.secret} --from-file=${GITLAB_TOKEN_KEY}=<file holding the token>`,
  ].join("\n");
  return [
    {
      path: paths.kubernetes(lab),
      mode: MODE_PUBLIC,
      contents: `${header}\n${triggerObjects(lab, config)
        .map((o) => toYaml(o))
        .join("---\n")}`,
    },
  ];
}
