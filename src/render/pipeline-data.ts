import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel } from "../model.js";
import { toYaml } from "./yaml.js";
import { paths } from "./paths.js";

/** One entry of the gitrepo-trigger configuration: its options, every one a string. */
export type TriggerConfig = Readonly<Record<string, string>>;

/**
 * The gitrepo-trigger configuration of the lab (cki_tools.gitrepo_trigger, "Pipeline
 * configuration YAML"; docs/pipeline.md has the contract and its sources). Entries whose name
 * starts with a dot are not triggered themselves, `.default` is inherited by every entry, like
 * `default:` in GitLab CI, and every option whose name does not start with a dot is passed to
 * the pipeline as a variable. So `.default` holds only what every trigger sends:
 *
 * - `cki_pipeline_project`: the pipeline project below GITLAB_PARENT_PROJECT (the CronJob sets
 *   that), so the pair names `pipeline.project`, where the lab's runners are registered;
 * - `runner_tags`: the tags the pipeline's jobs need to reach the lab's runners, one string
 *   joined by commas (GitLab's own form of a tag list): a pipeline variable holds a string.
 *
 * Each trigger adds the repository it watches, its branch, the pipeline project's branch its
 * pipelines run in (`cki_pipeline_branch`) and its `extra` variables, which validation keeps
 * from replacing any of these. The GitLab instance is the CronJob's GITLAB_URL, not an option.
 */
export function triggerConfig(lab: LabModel): Record<string, TriggerConfig> {
  const config: Record<string, TriggerConfig> = {
    ".default": {
      cki_pipeline_project: lab.pipeline.projectName,
      runner_tags: lab.pipeline.runnerTags.join(","),
    },
  };
  for (const t of lab.pipeline.triggers) {
    config[t.name] = {
      ...t.extra,
      git_url: t.gitUrl,
      branch: t.branch,
      cki_pipeline_branch: t.pipelineBranch,
    };
  }
  return config;
}

/**
 * The trigger YAML: a header comment, then the configuration with sorted keys. The pipeline-data
 * file and the Kubernetes ConfigMap carry exactly this text.
 */
export function triggerYaml(lab: LabModel): string {
  return `# ${generatedHeader(lab.sourceName, "gitrepo-trigger configuration")}\n${toYaml(triggerConfig(lab), { sorted: true, quoted: true })}`;
}

/** `<lab>/pipeline-data/<lab>.yaml`, for the pipeline-data repository. */
export function renderPipelineData(
  lab: LabModel,
  text = triggerYaml(lab),
): GeneratedFile[] {
  return [{ path: paths.pipelineData(lab), mode: MODE_PUBLIC, contents: text }];
}
