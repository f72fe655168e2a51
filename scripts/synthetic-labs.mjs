/**
 * Valid synthetic labs, for the benchmark (scripts/bench.mjs) and the tests (property, crash).
 * Plain JS so that node runs it against dist/ and tsx imports it from tests alike.
 *
 * `buildLab(params)` turns explicit parameters into a lab object that passes every rule of
 * ../shared/lab-format.md by construction; `syntheticLab(i)` picks parameters from an index, so
 * labs 0..n-1 are distinct (names, VPC ids, credential paths) and valid together.
 */
import { stringify } from "yaml";

/** Tunnel kinds of lab format version 1. */
export const VPN_KINDS = Object.freeze([
  "openvpn-static-key",
  "openvpn-tls",
  "wireguard",
  "ipsec",
]);

const ZONE_LETTERS = "abcd";

/** `n` as `width` lowercase hex digits (AWS ids). */
function hex(n, width) {
  return (n >>> 0).toString(16).padStart(width, "0").slice(-width);
}

/** A WireGuard public key: base64 of 32 bytes derived from `seed`. */
export function wireguardKey(seed) {
  const bytes = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) bytes[i] = (seed * 31 + i * 17 + 7) & 255;
  return bytes.toString("base64");
}

/**
 * A lab object from explicit parameters. Every parameter has a default; the ranges below keep
 * the lab valid:
 * - `name`: ^[a-z][a-z0-9]{0,15}$
 * - `vpcOctet` (0-9): the VPC is 10.<vpcOctet>.0.0/16; zone k uses runner subnet
 *   10.<vpcOctet>.k.0/28 and worker subnet 10.<vpcOctet>.(16+4k).0/22
 * - `zones` 1-4, `runnerHost` 4-14 (an address of the /28 that AWS does not reserve)
 * - `intranetOctet` (20-240) and `intranetCount` 1-3: 10.(intranetOctet+j).0.0/16
 * - `domainCount` 1-3: <name>.example.com, <name>-j.<tld>
 * - `vpn`: one of VPN_KINDS; `egress`: add an allow-list
 */
export function buildLab(params = {}) {
  const p = {
    name: "lab0",
    seed: 0,
    vpcOctet: 0,
    zones: 1,
    runnerHost: 10,
    intranetOctet: 20,
    intranetCount: 1,
    domainCount: 1,
    tld: "example.org",
    vpn: "openvpn-static-key",
    protocol: "udp",
    cipher: undefined,
    keyDirection: undefined,
    port: undefined,
    interfaceName: undefined,
    egress: false,
    nameserverHost: 53,
    ...params,
  };
  const name = p.name;
  const region = "us-east-1";
  const v = p.vpcOctet;
  const domains = Array.from({ length: p.domainCount }, (_, j) =>
    j === 0 ? `${name}.example.com` : `${name}-${j}.${p.tld}`,
  );
  const cidrs = Array.from(
    { length: p.intranetCount },
    (_, j) => `10.${p.intranetOctet + j}.0.0/16`,
  );
  const zones = {};
  const runners = [];
  for (let k = 0; k < p.zones; k++) {
    const zone = `${region}${ZONE_LETTERS[k]}`;
    zones[zone] = {
      runner_subnet: `10.${v}.${k}.0/28`,
      worker_subnet: `10.${v}.${16 + 4 * k}.0/22`,
      nat_gateway_id: `nat-${hex(p.seed * 8 + k, 17)}`,
    };
    const runnerName = `${name}-r${k + 1}`;
    const dir = `/etc/gen-lab/${name}`;
    const vpn = {};
    // One server port serves one static-key peer: each further runner gets the next port.
    if (
      p.vpn !== "ipsec" &&
      (p.port !== undefined || (p.vpn === "openvpn-static-key" && k > 0))
    )
      vpn.port = (p.port ?? 1194) + k;
    switch (p.vpn) {
      case "openvpn-static-key":
        vpn.static_key = `${dir}/${runnerName}.key`;
        if (p.keyDirection !== undefined) vpn.key_direction = p.keyDirection;
        vpn.local_ip = `10.255.${k}.2`;
        vpn.remote_ip = `10.255.${k}.1`;
        break;
      case "openvpn-tls":
        vpn.cert = `${dir}/${runnerName}.crt`;
        vpn.key = `${dir}/${runnerName}.pem`;
        break;
      case "wireguard":
        vpn.private_key_file = `${dir}/${runnerName}.wg`;
        vpn.address = `10.255.${k}.2/32`;
        break;
      case "ipsec":
        vpn.psk_file = `${dir}/${runnerName}.psk`;
        break;
      default:
        throw new Error(`unknown vpn kind ${p.vpn}`);
    }
    const runner = {
      name: runnerName,
      zone,
      address: `10.${v}.${k}.${p.runnerHost}`,
    };
    if (p.interfaceName !== undefined) runner.interface = p.interfaceName;
    runner.vpn = vpn;
    runners.push(runner);
  }

  const remote = `vpn.${domains[0]}`;
  let vpn;
  switch (p.vpn) {
    case "openvpn-static-key":
    case "openvpn-tls":
      vpn = {
        type: "openvpn",
        remote,
        auth: p.vpn === "openvpn-tls" ? "tls" : "static-key",
        protocol: p.protocol,
      };
      if (p.cipher !== undefined) vpn.cipher = p.cipher;
      if (p.vpn === "openvpn-tls") vpn.ca = `/etc/gen-lab/${name}/ca.crt`;
      break;
    case "wireguard":
      vpn = {
        type: "wireguard",
        remote,
        public_key: wireguardKey(p.seed),
        endpoint_port: 51820,
        keepalive: 25,
      };
      break;
    case "ipsec":
      vpn = { type: "ipsec", remote, ike: "aes256-sha256-modp2048" };
      break;
  }

  const lab = {
    version: 1,
    name,
    intranet: {
      cidrs,
      domains,
      nameservers: [`10.${p.intranetOctet}.0.${p.nameserverHost}`],
    },
    beaker: { url: `https://beaker.${domains[0]}` },
    vpn,
    aws: {
      region,
      vpc_id: `vpc-${hex(p.seed, 17)}`,
      vpc_cidr: `10.${v}.0.0/16`,
      ami: `ami-${hex(p.seed + 1, 17)}`,
      internet_gateway_id: `igw-${hex(p.seed + 2, 17)}`,
      zones,
    },
    runners,
    pipeline: {
      project: `cki/${name}-pipelines`,
      schedule: "0 */4 * * *",
      triggers: [
        {
          name: "main",
          git_url: `https://gitlab.com/cki/${name}/kernel.git`,
          branch: "main",
        },
      ],
    },
  };
  if (p.egress) {
    lab.egress = [
      { to: `beaker.${domains[0]}`, ports: [80, 443] },
      { to: `10.${p.intranetOctet}.5.0/24`, ports: [22] },
    ];
  }
  return lab;
}

/**
 * Parameters of the i-th synthetic lab: all four tunnel kinds, 1-3 zones, every other lab with
 * an allow-list, and no warnings.
 */
export function syntheticParams(i, overrides = {}) {
  return {
    name: `lab${i.toString(36)}`,
    seed: i,
    vpcOctet: i % 10,
    zones: 1 + (i % 3),
    runnerHost: 4 + (i % 11),
    // One range for IPsec: with more, a lab warns (libreswan 4 refuses a list in rightsubnet).
    intranetCount:
      VPN_KINDS[i % VPN_KINDS.length] === "ipsec" ? 1 : 1 + (i % 2),
    domainCount: 1 + ((i >> 1) % 2),
    vpn: VPN_KINDS[i % VPN_KINDS.length],
    // What a user sets after the warning for a static-key tunnel without one: the labs are
    // clean, so every lab takes the path of a lab with nothing to report.
    cipher:
      VPN_KINDS[i % VPN_KINDS.length] === "openvpn-static-key"
        ? "AES-256-CBC"
        : undefined,
    egress: i % 2 === 0,
    ...overrides,
  };
}

/** The i-th synthetic lab as YAML text. */
export function syntheticLab(i, overrides = {}) {
  const params = syntheticParams(i, overrides);
  return {
    name: params.name,
    file: `${params.name}.yaml`,
    text: stringify(buildLab(params)),
  };
}

/** Labs 0..n-1: distinct names and VPCs, valid when given together. */
export function syntheticLabs(n, overrides = {}) {
  return Array.from({ length: n }, (_, i) => syntheticLab(i, overrides));
}
