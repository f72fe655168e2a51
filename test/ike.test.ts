/**
 * vpn.ike against libreswan's own proposal parser (`ipsec algparse`, Debian's libreswan 4.10):
 * gen-lab must refuse exactly the IKEv2 proposal lists libreswan refuses, on a corpus of
 * written proposals and on generated token soup.
 */
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkLabs } from "../src/index.js";
import { ikeProblem } from "../src/ike.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { FIXTURES } from "./helpers.js";

const ALGPARSE = "/usr/libexec/ipsec/algparse";

/** libreswan's verdict on each proposal list: true when it takes it. */
function libreswanTakes(proposals: readonly string[]): boolean[] {
  const r = spawnSync(ALGPARSE, ["-v2", ...proposals.map((p) => `ike=${p}`)], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  assert.ok(r.stdout !== null && r.error === undefined, `runs ${ALGPARSE}`);
  // Each proposal's output starts with the command line that would check it alone.
  const blocks = r.stdout.split(/^algparse -v2 /m).slice(1);
  assert.is(blocks.length, proposals.length, "one answer per proposal");
  return blocks.map((b) => !/\bERROR\b/.test(b));
}

function assertSameVerdicts(proposals: readonly string[]): void {
  const theirs = libreswanTakes(proposals);
  const differ = proposals.filter(
    (p, i) => (ikeProblem(p) === undefined) !== theirs[i],
  );
  assert.equal(
    differ.map(
      (p) =>
        `${p}: libreswan ${theirs[proposals.indexOf(p)] ? "takes" : "refuses"} it, gen-lab says ${ikeProblem(p) ?? "fine"}`,
    ),
    [],
  );
}

test("ike: written proposals get libreswan's verdict", () => {
  assertSameVerdicts([
    // What labs write.
    "aes256-sha256-modp2048",
    "aes256-sha2_256-modp2048",
    "aes256-sha256;modp2048",
    "aes_gcm256-sha2;dh19",
    "aes_gcm256-sha2_256-dh19",
    "chacha20_poly1305-sha512-curve25519",
    "aes256-sha2_512+sha2_256-dh19+dh20",
    "aes128-sha1,aes256-sha2",
    "AES256-SHA256-MODP2048",
    "aes-256-sha1",
    "aes_gcm_c_256-sha384-ecp_384",
    "camellia256-sha256-modp3072",
    "3des-sha1-modp1536",
    "aes-md5-modp1536",
    "aesctr128-aes_xcbc-dh14",
    "aes-sha1_96-sha1",
    "aes_gcm-none-sha1",
    "aes_gcm-null-sha1-dh19",
    "aes-sha2_256_128-sha1",
    "aes;dh19",
    "aes256",
    // Typos, weak or missing parts, wrong order.
    "foo",
    "aes_gcm256-null-dh19",
    "aes256-sha256-modp2047",
    "aes256-sha256-modp2048-a-b-c-d",
    "3des-md5-modp1024",
    "aes256-sha256-modp1024",
    "aes-sha1-dh23",
    "aes-sha1-none",
    "aes-sha1-dh0",
    "aes-sha1-modp2048-dh19",
    "aes-sha1;dh19;dh20",
    "aes-none-sha1",
    "aes_gcm-sha1_96-sha1",
    "aes+aes_gcm",
    "aes512",
    "aes0",
    "aes-0",
    "aes256-128",
    "aes-256-256",
    "3des192",
    "chacha20_poly1305_256",
    "aes_ccm",
    "null",
    "des-md5",
    "aes-md5_96",
    "aes,,aes",
    ",",
    "aes,",
    "-",
    "aes-",
    "aes--sha1",
    "aes-sha1+",
    "aes-sha1;",
    ";dh19",
    "aes-sha1-dh19-",
  ]);
});

test("ike: generated token soup gets libreswan's verdict", () => {
  const names = [
    ...[
      "aes",
      "aes_cbc",
      "aes_gcm",
      "aes_gcm_16",
      "aes_gcm_a",
      "aes_ctr",
      "aesctr",
    ],
    ...[
      "3des",
      "camellia",
      "chacha20poly1305",
      "chacha20_poly1305",
      "aes_ccm",
      "null",
    ],
    ...["sha1", "sha2", "sha256", "sha2_512", "md5", "aes_xcbc", "hmac_sha1"],
    ...["sha1_96", "sha2_256_128", "aes_xcbc_96", "none", "aes_cmac"],
    ...[
      "modp1536",
      "modp2048",
      "modp1024",
      "dh14",
      "dh19",
      "dh22",
      "ecp_256",
      "curve25519",
      "dh0",
    ],
    ...["128", "192", "256", "0", "512", "AES", "Sha1", "x", ""],
  ];
  const token = fc.oneof(
    fc.constantFrom(...names),
    fc
      .tuple(
        fc.constantFrom(
          "aes",
          "aes_gcm",
          "camellia",
          "3des",
          "aes_ctr",
          "chacha20poly1305",
        ),
        fc.constantFrom("", "_"),
        fc.constantFrom("128", "192", "256", "0", "64", "0128"),
      )
      .map(([n, sep, bits]) => `${n}${sep}${bits}`),
  );
  const soup = fc
    .tuple(
      token,
      fc.array(fc.tuple(fc.constantFrom("-", "-", "+", ";", ","), token), {
        maxLength: 6,
      }),
    )
    .map(([first, rest]) => first + rest.map(([d, t]) => d + t).join(""));
  // Shaped like a proposal (<encr>[-<integ>][-<prf>][-|;<dh>]), each part mostly of its own
  // kind, so that many are taken.
  const of = (own: readonly string[]) =>
    fc.oneof(
      { arbitrary: fc.constantFrom(...own), weight: 5 },
      { arbitrary: token, weight: 1 },
    );
  const part = (own: readonly string[]) =>
    fc.array(of(own), { minLength: 1, maxLength: 2 }).map((t) => t.join("+"));
  const encr = [
    "aes",
    "aes256",
    "aes_gcm",
    "aes_gcm_256",
    "aes-128",
    "3des",
    "camellia192",
    "chacha20poly1305",
    "aesctr",
  ];
  const integ = ["sha1_96", "sha2_256_128", "aes_xcbc_96", "none", "sha1"];
  const prf = ["sha1", "sha2", "sha2_512", "md5", "aes_xcbc"];
  const dh = ["modp2048", "dh19", "ecp_384", "curve25519", "dh14", "modp1536"];
  const shaped = fc
    .tuple(
      part(encr),
      fc.option(part(integ)),
      fc.option(part(prf)),
      fc.option(fc.tuple(fc.constantFrom("-", ";"), part(dh))),
    )
    .map(
      ([e, i, p, d]) =>
        [e, i, p].filter((x) => x !== null).join("-") + (d ? d[0] + d[1] : ""),
    );
  const proposal = fc.oneof(soup, shaped).filter((p) => p.length > 0);
  const corpus = fc.sample(proposal, {
    numRuns: 4000,
    seed: Number(process.env["FC_SEED"] ?? 20261123),
  });
  assertSameVerdicts(corpus);
  // The soup must hold both verdicts in numbers, or it proves little.
  const taken = corpus.filter((p) => ikeProblem(p) === undefined).length;
  assert.ok(taken > 400 && taken < 3600, `${taken} of 4000 taken`);
});

test("ike: a lab's proposal libreswan refuses is an error at vpn.ike", () => {
  const text = fs
    .readFileSync(path.join(FIXTURES, "ipsec.yaml"), "utf8")
    .replace("ike: aes256-sha256-modp2048", "ike: aes_gcm256-null-dh19");
  assert.ok(text.includes("aes_gcm256-null-dh19"), "the fixture names its ike");
  const { labs, diagnostics } = checkLabs([{ file: "ipsec.yaml", text }]);
  assert.is(labs, undefined);
  const e = diagnostics.find((d) => d.path === "vpn.ike");
  assert.ok(e, JSON.stringify(diagnostics));
  assert.is(e!.severity, "error");
  assert.match(e!.message, /libreswan refuses.*'dh19' is not recognized/);
  assert.match(e!.hint, /algparse/);
});

test.run();
