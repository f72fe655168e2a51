import { generatedHeader, MODE_EXEC, type GeneratedFile } from "../file.js";
import type { LabModel, RunnerModel } from "../model.js";
import { paths } from "./paths.js";
import { renderTemplate } from "./templates.js";

/**
 * WireGuard private keys and IPsec pre-shared keys cannot be given to NetworkManager as a file
 * path (OpenVPN's static-key, ca, cert and key can). gen-lab never puts secrets in its output,
 * so for those tunnel types each runner gets a loader script that copies the secret from the
 * runner's own file into the installed keyfile at deploy time. None for OpenVPN.
 */
export function renderLoadSecrets(
  lab: LabModel,
  runner: RunnerModel,
): GeneratedFile[] {
  const t = runner.tunnel;
  if (t.type !== "wireguard" && t.type !== "ipsec") return [];
  const wireguard = t.type === "wireguard";
  const view = {
    header: generatedHeader(lab.sourceName, `runner ${runner.name}`),
    lab: lab.name,
    what: wireguard ? "WireGuard private key" : "IPsec pre-shared key",
    format: wireguard ? "wireguard-key" : "psk",
    secretFile: wireguard ? t.privateKeyFile : t.pskFile,
    keyfile: `/${paths.vpnKeyfile(lab)}`,
    section: wireguard ? "wireguard" : "vpn-secrets",
    key: wireguard ? "private-key" : "pskvalue",
  };
  return [
    {
      path: `${paths.rootfs(lab, runner)}/${paths.secretsLoader(lab)}`,
      mode: MODE_EXEC,
      contents: renderTemplate("load-secrets.sh.njk", view),
    },
  ];
}
