/**
 * The rules between labs that share a VPC (src/validate.ts, checkSharedVpc) find clashes by a
 * sweep over address order and by looking domains up by their parents. Here random sets of
 * labs in one VPC are checked against the plain definition: every pair of labs, every pair of
 * their ranges and domains, the later lab getting the error.
 */
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkLabs } from "../src/load.js";

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20261123) });

const INTRANETS = [
  "10.20.0.0/16",
  "10.20.5.0/24",
  "10.30.0.0/16",
  "10.40.0.0/24",
  "10.40.0.128/25",
  "10.255.0.0/24",
];
const DOMAINS = [
  "a.example.com",
  "x.a.example.com",
  "b.example.com",
  "c.example.org",
];
const TUNNELS = [
  "10.255.0.1",
  "10.255.0.2",
  "10.254.0.1",
  "10.254.0.2",
  "10.40.0.200",
];

interface LabSpec {
  intranet: string;
  domain: string;
  local: string;
  remote: string;
  /** Which /28 of 172.31.200.0/24 its runner subnet is, so subnets may meet too. */
  subnet: number;
}

const spec: fc.Arbitrary<LabSpec> = fc
  .record({
    intranet: fc.constantFrom(...INTRANETS),
    domain: fc.constantFrom(...DOMAINS),
    tunnel: fc.uniqueArray(fc.constantFrom(...TUNNELS), {
      minLength: 2,
      maxLength: 2,
    }),
    subnet: fc.integer({ min: 0, max: 3 }),
  })
  .map(({ intranet, domain, tunnel, subnet }) => ({
    intranet,
    domain,
    local: tunnel[0]!,
    remote: tunnel[1]!,
    subnet,
  }));

function labText(name: string, s: LabSpec, worker: number): string {
  const ns = s.intranet
    .replace(/\.0\/\d+$/, ".53")
    .replace(/\.128\/25$/, ".130");
  return `version: 1
name: ${name}
intranet: { cidrs: [${s.intranet}], domains: [${s.domain}], nameservers: [${ns}] }
beaker: { url: "https://beaker.${s.domain}" }
vpn: { type: openvpn, remote: vpn.example.net, auth: static-key, cipher: AES-256-CBC }
aws:
  region: us-east-1
  vpc_id: vpc-0a1b2c3d4e5f60718
  vpc_cidr: 172.31.0.0/16
  ami: ami-0123456789abcdef0
  internet_gateway_id: igw-0123456789abcdef0
  zones:
    us-east-1a: { runner_subnet: 172.31.200.${16 * s.subnet}/28, worker_subnet: 172.31.${worker}.0/24, nat_gateway_id: nat-0123456789abcdef0 }
runners:
  - name: ${name}-1
    zone: us-east-1a
    address: 172.31.200.${16 * s.subnet + 10}
    vpn: { static_key: /etc/gen-lab/${name}/k, local_ip: ${s.local}, remote_ip: ${s.remote} }
pipeline:
  project: group/project
  schedule: "0 * * * *"
  triggers: [{ name: t, git_url: https://gitlab.com/a/b.git, branch: main }]
`;
}

const net = (cidr: string) => {
  const [a, p] = cidr.split("/");
  const n = a!.split(".").reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(p ?? 32));
  return { first: n, last: n + size - 1 };
};
const meet = (x: string, y: string) => {
  const a = net(x);
  const b = net(y);
  return a.first <= b.last && b.first <= a.last;
};
const under = (h: string, d: string) => h === d || h.endsWith(`.${d}`);

/** The cross-lab problems the plain definition expects, as `lab path` lines. */
function expected(specs: readonly LabSpec[]): string[] {
  const out = new Set<string>();
  for (let b = 1; b < specs.length; b++)
    for (let a = 0; a < b; a++) {
      const x = specs[b]!;
      const y = specs[a]!;
      const ranges = (s: LabSpec) => [
        { path: "intranet.cidrs[0]", cidr: s.intranet, what: "intranet" },
        {
          path: "aws.zones.us-east-1a.runner_subnet",
          cidr: `172.31.200.${16 * s.subnet}/28`,
          what: "subnet",
        },
        {
          path: "runners[0].vpn.local_ip",
          cidr: `${s.local}/32`,
          what: "tunnel",
        },
        {
          path: "runners[0].vpn.remote_ip",
          cidr: `${s.remote}/32`,
          what: "tunnel",
        },
      ];
      for (const rx of ranges(x))
        for (const ry of ranges(y))
          if (
            meet(rx.cidr, ry.cidr) &&
            (rx.what === ry.what ||
              (rx.what !== "subnet" && ry.what !== "subnet"))
          )
            out.add(`lab${b} ${rx.path}`);
      if (under(x.domain, y.domain) || under(y.domain, x.domain))
        out.add(`lab${b} intranet.domains[0]`);
    }
  return [...out].sort();
}

test("labs sharing a VPC: every clash of ranges or domains, reported on the later lab", () => {
  fc.assert(
    fc.property(fc.array(spec, { minLength: 2, maxLength: 7 }), (specs) => {
      // Each lab alone must be valid, so only the rules between labs speak.
      const alone = specs.map((s, i) =>
        checkLabs([{ file: `lab${i}.yaml`, text: labText(`lab${i}`, s, i) }]),
      );
      fc.pre(alone.every((r) => r.labs !== undefined));
      const result = checkLabs(
        specs.map((s, i) => ({
          file: `lab${i}.yaml`,
          text: labText(`lab${i}`, s, i),
        })),
      );
      const got = [
        ...new Set(
          result.diagnostics
            .filter((d) => d.severity === "error")
            .map((d) => `${d.file.replace(/\.yaml$/, "")} ${d.path}`),
        ),
      ].sort();
      assert.equal(got, expected(specs));
    }),
    { numRuns: 300 },
  );
});

test.run();
