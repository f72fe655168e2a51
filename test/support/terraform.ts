/**
 * Terraform as the authority on the generated Terraform JSON: the real CLI with a filesystem
 * mirror of hashicorp/aws (no registry, no network), and the providers' own schemas: the AWS
 * provider's from `terraform providers schema -json`, the GitLab provider's (not in the
 * mirror) from its published bindings, @cdktf/provider-gitlab.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "../helpers.js";

/** Where a filesystem mirror of registry.terraform.io/hashicorp/aws may be, besides $TF_PLUGIN_MIRROR. */
const MIRRORS = [
  "/opt/tf-plugins",
  "/usr/share/terraform/plugins",
  "/usr/local/share/terraform/plugins",
  path.join(os.homedir(), ".terraform.d/plugins"),
  path.join(os.homedir(), ".local/share/terraform/plugins"),
];

export interface Terraform {
  /** Environment for every terraform call: the CLI config pointing at the mirror. */
  readonly env: NodeJS.ProcessEnv;
  /** Run terraform in `dir`, without network when this process may make a network namespace. */
  run(
    dir: string,
    args: readonly string[],
  ): { status: number | null; out: string };
}

/** The terraform CLI and its mirror, or why the tests that need them cannot run here. */
export function findTerraform(): Terraform | string {
  if (spawnSync("terraform", ["version"]).status !== 0)
    return "no terraform CLI on PATH";
  const mirror = [process.env["TF_PLUGIN_MIRROR"], ...MIRRORS].find(
    (m) =>
      m && fs.existsSync(path.join(m, "registry.terraform.io/hashicorp/aws")),
  );
  if (!mirror) return "no filesystem mirror of hashicorp/aws found";
  const config = path.join(
    fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-tf-")),
    "terraformrc",
  );
  fs.writeFileSync(
    config,
    `provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(mirror)}
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
`,
  );
  const env = {
    ...process.env,
    TF_CLI_CONFIG_FILE: config,
    TF_IN_AUTOMATION: "1",
    CHECKPOINT_DISABLE: "1",
  };
  const offline =
    process.getuid?.() === 0 &&
    spawnSync("unshare", ["-n", "true"]).status === 0;
  return {
    env,
    run(dir, args) {
      const argv = ["terraform", ...args, "-no-color"];
      const r = spawnSync(
        offline ? "unshare" : argv[0]!,
        offline ? ["-n", ...argv] : argv.slice(1),
        {
          cwd: dir,
          env,
          encoding: "utf8",
          timeout: 300_000,
          // The AWS provider's schema is 14 MB of JSON.
          maxBuffer: 256 * 1024 * 1024,
        },
      );
      return {
        status: r.status,
        out: `${r.stdout}${r.stderr}${r.error ? `\nhung or failed to start: ${r.error.message}` : ""}`,
      };
    },
  };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A lab's Terraform as plan can run it here: the GitLab provider, its data source and its
 * runners are left out, each reference to a runner's token a literal; an override file gives
 * the AWS provider fake credentials and skips every call a plan would make to check them.
 */
export function withoutGitlab(tf: Json): { main: Json; override: Json } {
  const main = structuredClone(tf);
  delete main.terraform.required_providers.gitlab;
  delete main.provider.gitlab;
  delete main.data;
  delete main.resource.gitlab_user_runner;
  const text = JSON.stringify(main).replace(
    /\$\{gitlab_user_runner\.[A-Za-z0-9_-]+\.token\}/g,
    "glrt-stand-in-token",
  );
  return {
    main: JSON.parse(text) as Json,
    override: {
      provider: {
        aws: {
          region: tf.provider.aws.region,
          access_key: "AKIASTANDIN",
          secret_key: "stand-in",
          skip_credentials_validation: true,
          skip_requesting_account_id: true,
          skip_metadata_api_check: true,
          skip_region_validation: true,
        },
      },
    },
  };
}

/** A provider schema as Terraform prints it: per type, its attributes and nested blocks. */
export interface Block {
  readonly attributes?: Record<
    string,
    { computed?: boolean; optional?: boolean; required?: boolean }
  >;
  readonly block_types?: Record<string, { block: Block; nesting_mode: string }>;
}

/**
 * The GitLab provider's resource or data source from @cdktf/provider-gitlab's generated code:
 * its arguments (what `synthesizeHclAttributes` writes) and what it exports (its getters).
 */
export function gitlabSchema(
  type: string,
  data: boolean,
): { args: string[]; exported: string[] } {
  const dir = path.join(
    ROOT,
    "node_modules/@cdktf/provider-gitlab/lib",
    data
      ? `data-${type.replace(/_/g, "-")}`
      : type.replace(/^gitlab_/, "").replace(/_/g, "-"),
  );
  const js = fs.readFileSync(path.join(dir, "index.js"), "utf8");
  if (!js.includes(`terraformResourceType: '${type}'`))
    throw new Error(`${dir} is not ${type}`);
  const synth = /synthesizeHclAttributes\(\) \{([\s\S]*?)\n {4}\}/.exec(
    js,
  )![1]!;
  const args = [...synth.matchAll(/^\s+(\w+): \{\s*value:/gm)].map(
    (m) => m[1]!,
  );
  const exported = [...js.matchAll(/this\.get\w+Attribute\('(\w+)'\)/g)].map(
    (m) => m[1]!,
  );
  return { args, exported: [...new Set([...exported, ...args])] };
}
