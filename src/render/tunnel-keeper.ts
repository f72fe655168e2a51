import {
  generatedHeader,
  MODE_EXEC,
  MODE_PUBLIC,
  type GeneratedFile,
} from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { serviceUnit } from "./keyfile.js";
import { paths } from "./paths.js";
import { renderTemplate } from "./templates.js";

/**
 * How the keeper paces itself (docs/resilience.md has the measurements behind them): a look
 * every 10 s bounds the time from a lab's return to a working tunnel well under a minute; SSM is
 * asked for a missing credential every 20 s (one GetParameter per credential: far below SSM's
 * rate limit); three failed Beaker probes in a row (30 s) take
 * a tunnel that is up but carries nothing down; after 30 s without a tunnel gitlab-runner stops.
 */
export const KEEPER = {
  interval: 10,
  fetchEvery: 20,
  probeFailures: 3,
  unfitAfter: 30,
} as const;

/** What the keeper says about the tunnel ("up ..." or "down <why>"), and its mark of a runner it stopped. */
export const keeperState = (lab: LabModel) => `/run/gen-lab/${lab.name}/tunnel`;
const stoppedMark = (lab: LabModel) =>
  `/run/gen-lab/${lab.name}/runner-stopped`;

export const tunnelUnitName = (lab: LabModel) =>
  `gen-lab-${lab.name}-tunnel.service`;

/**
 * The tunnel keeper of a runner: a script and the unit that runs it from boot on, forever. It
 * starts the tunnel (NetworkManager does not autoconnect VPN plugin profiles), starts it again
 * after any drop, fetches a credential that was not in SSM at boot, and stops gitlab-runner
 * while the lab cannot be reached.
 */
export function renderTunnelKeeper(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile[] {
  const root = paths.rootfs(lab, runner);
  const header = generatedHeader(lab.sourceName, `runner ${runner.name}`);
  const beaker = new URL(lab.beakerUrl);
  const t = runner.tunnel;
  const script = renderTemplate("tunnel-keeper.sh.njk", {
    header,
    lab: lab.name,
    runner: runner.name,
    ...KEEPER,
    beakerHost: beaker.hostname,
    beakerPort: beaker.port || (beaker.protocol === "https:" ? "443" : "80"),
    stateFile: keeperState(lab),
    stoppedMark: stoppedMark(lab),
    vpnUuid: runner.connections.vpnUuid,
    files: runner.credentials.map((c) => c.path),
    bootScript: `/${paths.bootScript(lab)}`,
    dispatcher: `/${paths.dispatcher(lab)}`,
    uplinkUuid: runner.connections.uplinkUuid,
    staticKey: t.type === "openvpn" && t.auth === "static-key",
  });
  const unit = serviceUnit(
    header,
    [
      [
        "Description",
        `gen-lab: keep lab ${lab.name}'s tunnel up on runner ${runner.name}`,
      ],
      ["Wants", "NetworkManager.service"],
      ["After", "NetworkManager.service"],
    ],
    [
      ["Type", "simple"],
      ["ExecStart", `/${paths.tunnelKeeper(lab)}`],
      ["Restart", "always"],
      ["RestartSec", "5"],
    ],
  );
  return [
    {
      path: `${root}/${paths.tunnelKeeper(lab)}`,
      mode: MODE_EXEC,
      contents: script,
    },
    {
      path: `${root}/${paths.tunnelUnit(lab)}`,
      mode: MODE_PUBLIC,
      contents: unit,
    },
  ];
}
