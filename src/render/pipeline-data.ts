import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel } from "../model.js";
import { toYaml } from "./yaml.js";
import { paths } from "./paths.js";

/** One entry of the gitrepo-trigger configuration: a name and its flat string options. */
export type TriggerConfig = Readonly<
  Record<string, string | readonly string[]>
>;

/**
 * The gitrepo-trigger configuration of the lab (cki_tools.gitrepo_trigger, "Pipeline
 * configuration YAML"): entries whose name starts with a dot are not triggered themselves, and
 * `.default` is inherited by every entry, like `default:` in GitLab CI. So what all of the lab's
 * triggers share is written once in `.default`, and each trigger adds its repository, branch
 * and its `extra` pipeline variables, flat, the way the pipeline receives them (validate.ts
 * keeps `extra` from replacing git_url or branch, or using gitrepo-trigger's dotted keys).
 */
export function triggerConfig(lab: LabModel): Record<string, TriggerConfig> {
  const config: Record<string, TriggerConfig> = {
    ".default": {
      cki_pipeline_project: lab.pipeline.project,
      gitlab_url: lab.pipeline.gitlabUrl,
      runner_tags: lab.pipeline.runnerTags,
    },
  };
  for (const t of lab.pipeline.triggers) {
    config[t.name] = { ...t.extra, git_url: t.gitUrl, branch: t.branch };
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
