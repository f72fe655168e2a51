import type { Diagnostic } from "../diagnostics.js";
import { bucketName, tunnelDevice } from "../model.js";
import { hostBitsZero, hostNet, overlaps, parseNet, type Net } from "../net.js";
import type { LabSource, YamlPath } from "../parse.js";
import type { LabInput } from "../schema.js";
import { credentialParameters, credentialPaths, underDomain } from "./lab.js";
import { Reporter } from "./report.js";

/** One valid lab of a set, for the rules across labs. */
export interface CheckedLab {
  readonly source: LabSource;
  readonly input: LabInput;
}

/** A value of a lab that no other lab of the set may have, with where it was written. */
interface Claim {
  readonly key: string;
  readonly path: YamlPath;
  readonly what: string;
  readonly hint: string;
}

/**
 * lab-format.md, "Across several labs given together". Each conflict is reported on the later
 * lab, naming the earlier one. Labs come in single digits: every pair is compared.
 */
export function checkLabSet(labs: readonly CheckedLab[]): Diagnostic[] {
  const reporters = labs.map((l) => new Reporter(l.source));
  const claims = labs.map(claimsOf);
  for (let b = 1; b < labs.length; b++)
    for (let a = 0; a < b; a++) {
      const [x, y] = [labs[a]!.input, labs[b]!.input];
      const ra = reporters[a]!;
      const rb = reporters[b]!;
      for (const cb of claims[b]!) {
        const ca = claims[a]!.find((c) => c.key === cb.key);
        if (ca)
          rb.error(
            cb.path,
            `${cb.what} is also used by ${ra.where(ca.path)} (lab ${x.name})`,
            cb.hint,
          );
      }
      checkRunnerTags(x, y, ra, rb);
      if (x.aws.region !== y.aws.region || x.aws.vpc_id !== y.aws.vpc_id)
        continue;
      if (x.aws.vpc_cidr !== y.aws.vpc_cidr)
        rb.error(
          ["aws", "vpc_cidr"],
          `VPC ${y.aws.vpc_id} has vpc_cidr ${x.aws.vpc_cidr} in lab ${x.name} (${ra.where(["aws", "vpc_cidr"])})`,
          "labs sharing a VPC must declare its same CIDR: fix aws.vpc_cidr or aws.vpc_id",
        );
      const rangesA = rangesOf(x);
      for (const rbr of rangesOf(y)) {
        const hit = rangesA.find((r) => overlaps(r.net, rbr.net));
        if (hit)
          rb.error(
            rbr.path,
            `${rbr.what} ${rbr.net.text.replace(/\/32$/, "")} overlaps ${hit.what} ${hit.net.text.replace(/\/32$/, "")} of lab ${x.name} at ${ra.where(hit.path)} (same VPC)`,
            "labs sharing a VPC need disjoint subnets, intranet ranges and tunnel addresses: their routes would collide",
          );
      }
      y.intranet.domains.forEach((d, i) => {
        const j = x.intranet.domains.findIndex(
          (e) => underDomain(d, e) || underDomain(e, d),
        );
        if (j >= 0)
          rb.error(
            ["intranet", "domains", i],
            `routing domain ${d} overlaps ${x.intranet.domains[j]} of lab ${x.name} at ${ra.where(["intranet", "domains", j])} (same VPC)`,
            "systemd-resolved would send one lab's names to the other lab's servers: keep routing domains disjoint",
          );
      });
    }
  return reporters.flatMap((r) => r.list);
}

/** Names, credential files, bucket names and tunnel devices: unique across labs. */
function claimsOf({ input }: CheckedLab): Claim[] {
  const claims: Claim[] = [
    {
      key: `name ${input.name}`,
      path: ["name"],
      what: `lab name ${input.name}`,
      hint: "lab names must be unique: they name AWS resources, NM connections and output directories",
    },
    ...credentialPaths(input).map((c) => ({
      key: `file ${c.file}`,
      path: c.path,
      what: c.file,
      hint: "credentials are per lab and runner: give each its own file",
    })),
    ...credentialParameters(input).map((p) => ({
      key: `parameter ${p.name}`,
      path: p.path,
      what: `SSM parameter ${p.name}`,
      hint: "credentials are per lab and runner: give each its own parameter",
    })),
    ...input.aws.buckets.map((purpose, i) => ({
      key: `bucket ${bucketName(input, purpose)}`,
      path: ["aws", "buckets", i],
      what: `bucket name ${bucketName(input, purpose)}`,
      hint: "S3 bucket names are global: change the prefix, environment or bucket purpose of one lab",
    })),
  ];
  // Labs may share a runner host; the device name is the lab name cut to the kernel's 15 characters.
  if (input.vpn.type !== "ipsec") {
    const device = tunnelDevice(input, input.vpn.type);
    claims.push({
      key: `device ${device}`,
      path: ["name"],
      what: `the tunnel device ${device}`,
      hint: `make the lab names differ within their first ${15 - device.indexOf("-") - 1} characters`,
    });
  }
  return claims;
}

function rangesOf(lab: LabInput): { path: YamlPath; net: Net; what: string }[] {
  const out: { path: YamlPath; net: Net; what: string }[] = [];
  lab.intranet.cidrs.forEach((c, i) => {
    if (hostBitsZero(c))
      out.push({
        path: ["intranet", "cidrs", i],
        net: parseNet(c),
        what: "intranet CIDR",
      });
  });
  for (const [zone, z] of Object.entries(lab.aws.zones))
    for (const key of ["runner_subnet", "worker_subnet"] as const)
      if (hostBitsZero(z[key]))
        out.push({
          path: ["aws", "zones", zone, key],
          net: parseNet(z[key]),
          what: "subnet",
        });
  lab.runners.forEach((runner, i) => {
    for (const f of ["local_ip", "remote_ip", "address"] as const) {
      const v = runner.vpn[f];
      if (v !== undefined)
        out.push({
          path: ["runners", i, "vpn", f],
          net: hostNet(v.split("/")[0]!),
          what: "tunnel address",
        });
    }
  });
  return out;
}

/**
 * GitLab gives a job to any runner holding all of the job's tags: when one lab's tags are all
 * tags of another lab on the same GitLab, that lab's runners take its jobs against the wrong intranet.
 */
function checkRunnerTags(
  x: LabInput,
  y: LabInput,
  ra: Reporter,
  rb: Reporter,
): void {
  const instance = (l: LabInput) => new URL(l.pipeline.gitlab_url).host;
  if (instance(x) !== instance(y)) return;
  const tags = (l: LabInput) => l.pipeline.runner_tags ?? [l.name];
  const [tx, ty] = [tags(x), tags(y)];
  if (!tx.every((t) => ty.includes(t)) && !ty.every((t) => tx.includes(t)))
    return;
  const path = (l: LabInput): YamlPath =>
    l.pipeline.runner_tags ? ["pipeline", "runner_tags"] : ["pipeline"];
  const free = [y.name, `${y.name}-lab`, `lab-${y.name}`].find(
    (t) => !tx.includes(t),
  );
  rb.error(
    path(y),
    `runner tags [${ty.join(", ")}] and lab ${x.name}'s [${tx.join(", ")}] (${ra.where(path(x))}) on ${instance(y)}: GitLab could run one lab's jobs on the other lab's runners, which reach only their own intranet`,
    ty.every((t) => tx.includes(t))
      ? `give this lab a tag lab ${x.name} does not have, e.g. add ${free} to runner_tags`
      : `leave lab ${x.name}'s tags off this lab, e.g. runner_tags: [${ty.filter((t) => !tx.includes(t)).join(", ")}]`,
  );
}
