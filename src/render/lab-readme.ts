import {
  commentSafe,
  generatedHeader,
  MODE_PUBLIC,
  type GeneratedFile,
} from "../file.js";
import type { LabModel, RunnerModel, TunnelModel } from "../model.js";
import { GITLAB_TOKEN_KEY, triggerNames } from "./kubernetes.js";
import { paths } from "./paths.js";
import { renderTemplate } from "./templates.js";
import { bootUnitName } from "./runner-boot.js";
import { KEEPER, keeperState, tunnelUnitName } from "./tunnel-keeper.js";
import { tfName } from "./terraform.js";

/** One runner as the README shows it; every path relative to the lab's output directory. */
export interface ReadmeRunnerView {
  readonly name: string;
  readonly zone: string;
  readonly address: string;
  readonly runnerSubnet: string;
  readonly workerSubnet: string;
  readonly natGatewayId: string;
  readonly tunnel: string;
  readonly description: string;
  readonly rootfs: string;
  readonly userData: string;
  readonly config: string;
  readonly workerUserData: string;
  /** Mermaid node ids: letters, digits and underscores only. */
  readonly nodeId: string;
  readonly workerNodeId: string;
  readonly natNodeId: string;
}

/** The flat view the README template prints: it computes nothing. */
export interface ReadmeView {
  readonly header: string;
  readonly lab: string;
  /** The lab file's name as a Markdown code span, backticks and all. */
  readonly sourceName: string;
  readonly vpcId: string;
  readonly vpcCidr: string;
  readonly region: string;
  readonly vpnType: string;
  readonly vpnRemote: string;
  readonly intranetCidrs: string;
  readonly intranetDomains: string;
  readonly beakerHost: string;
  readonly uplinkId: string;
  readonly vpnId: string;
  readonly forwardChain: string;
  readonly natChain: string;
  readonly terraformFile: string;
  readonly terraformDir: string;
  readonly pipelineDataFile: string;
  readonly pipelineProject: string;
  readonly kubernetesFile: string;
  readonly secretName: string;
  readonly secretKey: string;
  readonly cronJobName: string;
  /** The Job a first run by hand is, and the pipeline project's branch of each trigger. */
  readonly firstRunJob: string;
  readonly pipelineBranches: readonly {
    readonly trigger: string;
    readonly branch: string;
  }[];
  readonly schedule: string;
  readonly runnerTags: string;
  readonly workerScaling: string;
  readonly bootScript: string;
  readonly bootUnit: string;
  readonly keeperScript: string;
  readonly keeperUnit: string;
  readonly keeperState: string;
  readonly fetchEvery: number;
  readonly unfitAfter: number;
  readonly kmsAlias: string;
  /** Each SSM parameter to put, once (the CA's is shared), with the runner path it becomes. */
  readonly parameters: readonly {
    readonly parameter: string;
    readonly path: string;
    /** Where the operator has the file: its name, as a placeholder for their own path. */
    readonly local: string;
  }[];
  readonly buckets: readonly {
    readonly purpose: string;
    readonly name: string;
  }[];
  readonly runners: readonly ReadmeRunnerView[];
}

function tunnelSummary(t: TunnelModel): string {
  switch (t.type) {
    case "openvpn":
      return t.auth === "static-key"
        ? `openvpn static key, ${t.protocol} ${t.remote}:${t.port}, ${t.localIp} <-> ${t.remoteIp}`
        : `openvpn tls, ${t.protocol} ${t.remote}:${t.port}`;
    case "wireguard":
      return `wireguard ${t.remote}:${t.port}, ${t.address}`;
    case "ipsec":
      return `ipsec IKEv2 ${t.remote}`;
  }
}

/** Mermaid node ids follow the same rule as Terraform names: letters, digits and `_`. */
const nodeId = tfName;

/**
 * A Markdown code span of text: fenced by one backtick more than its longest run of them, and
 * padded with a space where it starts or ends with one (CommonMark, "Code spans").
 */
function codeSpan(text: string): string {
  const longest = Math.max(
    0,
    ...(text.match(/`+/g) ?? []).map((r) => r.length),
  );
  const fence = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** The view model of the lab's README. Pure. */
export function readmeView(lab: LabModel): ReadmeView {
  const k8s = triggerNames(lab);
  const runnerOf = (name: string): RunnerModel =>
    lab.runners.find((r) => r.name === name)!;
  // Zone order (sorted), the order of the subnets, routes and table rows alike.
  const runners = lab.aws.zones.map((zone): ReadmeRunnerView => {
    const r = runnerOf(zone.runner);
    return {
      name: r.name,
      zone: zone.name,
      address: r.address,
      runnerSubnet: zone.runnerSubnet,
      workerSubnet: zone.workerSubnet,
      natGatewayId: zone.natGatewayId,
      tunnel: tunnelSummary(r.tunnel),
      description: r.names.description,
      rootfs: relative(lab, paths.rootfs(lab, r)),
      userData: relative(lab, paths.runnerUserData(lab, r)),
      config: relative(lab, paths.runnerConfig(lab, r)),
      workerUserData: relative(lab, paths.workerUserData(lab, r)),
      nodeId: nodeId("runner", r.name),
      workerNodeId: nodeId("workers", zone.name),
      natNodeId: nodeId("nat", zone.name),
    };
  });
  const parameters = new Map<
    string,
    { parameter: string; path: string; local: string }
  >();
  for (const r of lab.runners)
    for (const c of r.credentials)
      parameters.set(c.parameter, {
        parameter: c.parameter,
        path: c.path,
        local: c.path.split("/").pop()!,
      });
  const first = lab.runners[0]!;
  return {
    // Inside an HTML comment, which `--` (and with it `-->`) would end early.
    header: generatedHeader(lab.sourceName).replace(/-(?=-)/g, "- "),
    lab: lab.name,
    sourceName: codeSpan(commentSafe(lab.sourceName)),
    vpcId: lab.aws.vpcId,
    vpcCidr: lab.aws.vpcCidr,
    region: lab.aws.region,
    vpnType: first.tunnel.type,
    vpnRemote: first.tunnel.remote,
    intranetCidrs: lab.intranet.cidrs.join(", "),
    intranetDomains: lab.intranet.domains.join(", "),
    beakerHost: new URL(lab.beakerUrl).hostname,
    uplinkId: first.connections.uplinkId,
    vpnId: first.connections.vpnId,
    forwardChain: lab.chains.forward,
    natChain: lab.chains.nat,
    terraformFile: relative(lab, paths.terraform(lab)),
    terraformDir: relative(lab, paths.terraform(lab)).replace(/\/[^/]+$/, ""),
    pipelineDataFile: relative(lab, paths.pipelineData(lab)),
    pipelineProject: lab.pipeline.project,
    kubernetesFile: relative(lab, paths.kubernetes(lab)),
    secretName: k8s.secret,
    secretKey: GITLAB_TOKEN_KEY,
    cronJobName: k8s.name,
    firstRunJob: k8s.firstRun,
    pipelineBranches: lab.pipeline.triggers.map((t) => ({
      trigger: t.name,
      branch: t.pipelineBranch,
    })),
    schedule: lab.pipeline.schedule,
    runnerTags: lab.pipeline.runnerTags.join(","),
    workerScaling:
      lab.workers.executor === "docker-autoscaler"
        ? "launch templates and Auto Scaling groups (one per runner), their security group"
        : "security group and instance profile (docker-machine starts the workers)",
    bootScript: paths.bootScript(lab),
    bootUnit: bootUnitName(lab),
    keeperScript: paths.tunnelKeeper(lab),
    keeperUnit: tunnelUnitName(lab),
    keeperState: keeperState(lab),
    fetchEvery: KEEPER.fetchEvery,
    unfitAfter: KEEPER.unfitAfter,
    kmsAlias: lab.names.kmsAlias,
    parameters: [...parameters.values()],
    buckets: lab.aws.buckets.map((b) => ({ purpose: b.purpose, name: b.name })),
    runners,
  };
}

/** A path of the output tree relative to the lab's own directory, as the README (inside it) links it. */
function relative(lab: LabModel, path: string): string {
  return path.slice(`${lab.name}/`.length);
}

/** `<lab>/README.md`: what was generated, where it goes, how to deploy and check it. */
export function renderLabReadme(lab: LabModel): GeneratedFile[] {
  return [
    {
      path: paths.readme(lab),
      mode: MODE_PUBLIC,
      contents: renderTemplate("lab-readme.md.njk", readmeView(lab)),
    },
  ];
}
