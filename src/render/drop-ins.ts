import ini from "ini";
import { generatedHeader, MODE_PUBLIC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { paths } from "./paths.js";

/**
 * resolved.conf's `[Resolve]` section. Naming it as the `section` option rather than nesting an
 * object writes the same text at a third of the cost (no recursive pass over sections).
 * `ini` writes into its options object, so each call gets its own copy.
 */
const resolveSection = () => ({ section: "Resolve", whitespace: false });

/** `# header` then INI text: systemd drop-ins and sysctl.d files are plain key=value files. */
function withHeader(header: string, body: string): string {
  return `# ${header}\n${body}`;
}

/** The runner's sysctl.d drop-in: it routes between its workers and the tunnel. */
export function renderSysctl(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile {
  return {
    path: `${paths.rootfs(lab, runner)}/${paths.sysctl(lab)}`,
    mode: MODE_PUBLIC,
    contents: withHeader(
      generatedHeader(lab.sourceName, `runner ${runner.name}`),
      ini.stringify({ "net.ipv4.ip_forward": 1 }, { whitespace: true }),
    ),
  };
}

/**
 * The runner's resolved.conf drop-in: an extra stub listener on the runner's private address
 * only (never 0.0.0.0, which would make it an open resolver), so its workers can ask it.
 */
export function renderRunnerResolved(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile {
  return {
    path: `${paths.rootfs(lab, runner)}/${paths.resolved(lab)}`,
    mode: MODE_PUBLIC,
    contents: withHeader(
      generatedHeader(lab.sourceName, `runner ${runner.name}`),
      ini.stringify({ DNSStubListenerExtra: runner.address }, resolveSection()),
    ),
  };
}

/** The workers' resolved.conf drop-in: intranet names go to their runner, everything else as before. */
export function workerResolvedConf(lab: LabModel, runner: RunnerModel): string {
  return withHeader(
    generatedHeader(lab.sourceName, `workers of runner ${runner.name}`),
    ini.stringify(
      {
        DNS: runner.address,
        Domains: lab.intranet.domains.map((d) => `~${d}`).join(" "),
      },
      resolveSection(),
    ),
  );
}
