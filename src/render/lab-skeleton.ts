import { Document, isMap, isScalar, Scalar, type Pair } from "yaml";

export type TunnelType = "openvpn" | "wireguard" | "ipsec";

/** What `gen-lab init` asks for; the rest of a new lab is placeholders, named as such. */
export interface SkeletonOptions {
  readonly name: string;
  readonly vpn: TunnelType;
  /** Availability zones, one runner each, all in one region (`us-east-1a` -> `us-east-1`). */
  readonly zones: readonly string[];
  /** The JSON Schema, relative to the new file, for the yaml-language-server modeline. */
  readonly schema: string;
}

const PLACEHOLDER = " placeholder: ";

/**
 * A new lab file: valid as it is (gen-lab accepts it and generates), each value the user must
 * replace marked "placeholder" in a comment, each field explained. Built as a YAML document with
 * comments, not as text.
 */
export function renderLabSkeleton(o: SkeletonOptions): string {
  const region = o.zones[0]!.replace(/[a-z]$/, "");
  const cred = `/etc/gen-lab/${o.name}`;
  const runners = o.zones.map((zone, i) => ({
    name: `${o.name}-${i + 1}`,
    zone,
    address: `172.31.200.${16 * i + 10}`,
    vpn:
      o.vpn === "openvpn"
        ? {
            cert: `${cred}/${o.name}-${i + 1}.crt`,
            key: `${cred}/${o.name}-${i + 1}.key`,
          }
        : o.vpn === "wireguard"
          ? {
              private_key_file: `${cred}/${o.name}-${i + 1}.key`,
              address: `10.255.0.${i + 2}/32`,
            }
          : { psk_file: `${cred}/${o.name}-${i + 1}.psk` },
  }));
  const doc = new Document({
    version: 1,
    name: o.name,
    intranet: {
      cidrs: ["10.20.0.0/16"],
      domains: [`${o.name}.example.com`],
      nameservers: ["10.20.0.53"],
    },
    beaker: { url: `https://beaker.${o.name}.example.com` },
    vpn: {
      type: o.vpn,
      remote: `vpn.${o.name}.example.com`,
      ...(o.vpn === "openvpn"
        ? { auth: "tls", protocol: "udp", ca: `${cred}/ca.crt` }
        : {}),
      ...(o.vpn === "wireguard" ? { public_key: "A".repeat(43) + "=" } : {}),
    },
    aws: {
      region,
      vpc_id: "vpc-0123456789abcdef0",
      vpc_cidr: "172.31.0.0/16",
      ami: "ami-0123456789abcdef0",
      internet_gateway_id: "igw-0123456789abcdef0",
      zones: Object.fromEntries(
        o.zones.map((zone, i) => [
          zone,
          {
            runner_subnet: `172.31.200.${16 * i}/28`,
            worker_subnet: `172.31.${208 + 4 * i}.0/22`,
            nat_gateway_id: `nat-0123456789abcdef${i % 10}`,
          },
        ]),
      ),
    },
    runners,
    pipeline: {
      project: `your-group/${o.name}-pipelines`,
      schedule: "0 */4 * * *",
      triggers: [
        {
          name: "rhel9",
          git_url:
            "https://gitlab.com/redhat/centos-stream/src/kernel/centos-stream-9.git",
          branch: "main",
        },
      ],
    },
  });
  const at = (path: readonly string[]) => doc.getIn(path, true);
  // A scalar's note goes after it on its line; a mapping's or list's on the line before its key.
  const note = (path: readonly string[], text: string) => {
    const node = at(path);
    if (isScalar(node)) node.comment = text.startsWith(" ") ? text : ` ${text}`;
    else {
      const parent = path.length > 1 ? at(path.slice(0, -1)) : doc.contents;
      const pair = isMap(parent)
        ? (parent.items as Pair<Scalar>[]).find(
            (p) => p.key.value === path.at(-1),
          )
        : undefined;
      if (pair) pair.key.commentBefore = ` ${text.trim()}`;
    }
  };
  for (const path of [
    ["intranet", "cidrs"],
    ["intranet", "domains"],
    ["intranet", "nameservers"],
    ...o.zones.map((zone) => ["aws", "zones", zone]),
  ])
    (at(path) as { flow?: boolean }).flow = true;
  (at(["pipeline", "schedule"]) as Scalar).type = Scalar.QUOTE_DOUBLE;

  doc.commentBefore = [
    ` yaml-language-server: $schema=${o.schema}`,
    ` Lab ${o.name}: written by gen-lab init. Replace every value marked "placeholder", then`,
    ` run: gen-lab <this file> -o out/. The schema above gives editors completion and each field's meaning.`,
  ].join("\n");
  note(
    ["intranet", "cidrs"],
    `${PLACEHOLDER}the lab's address ranges behind its VPN`,
  );
  note(
    ["intranet", "domains"],
    `${PLACEHOLDER}DNS domains resolved through the VPN`,
  );
  note(
    ["intranet", "nameservers"],
    `${PLACEHOLDER}the lab's DNS servers, inside intranet.cidrs`,
  );
  note(
    ["beaker", "url"],
    `${PLACEHOLDER}the lab's Beaker, under intranet.domains`,
  );
  note(
    ["vpn", "remote"],
    `${PLACEHOLDER}host name or IPv4 of the lab's VPN endpoint`,
  );
  if (o.vpn === "openvpn")
    note(
      ["vpn", "ca"],
      "the lab's CA certificate on the runners (fetched from SSM at boot)",
    );
  if (o.vpn === "wireguard")
    note(["vpn", "public_key"], `${PLACEHOLDER}the lab's WireGuard public key`);
  for (const key of ["vpc_id", "ami", "internet_gateway_id"])
    note(
      ["aws", key],
      `${PLACEHOLDER}your AWS ${key === "ami" ? "runner image (with NetworkManager)" : key.replace(/_/g, " ")}`,
    );
  note(
    ["aws", "vpc_cidr"],
    `${PLACEHOLDER}your VPC's range; the subnets below lie in it`,
  );
  note(
    ["aws", "zones"],
    "one runner subnet and one worker subnet per zone, and the zone's NAT gateway: placeholders",
  );
  note(
    ["runners"],
    "one runner per zone; each address is fixed in its zone's runner_subnet",
  );
  note(
    ["pipeline", "project"],
    `${PLACEHOLDER}the GitLab project of the lab's pipelines`,
  );
  note(
    ["pipeline", "triggers"],
    "the kernel trees whose new commits start a pipeline",
  );
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
