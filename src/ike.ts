/**
 * libreswan's `ike=` proposals for IKEv2, as libreswan 4 parses them (`ipsec algparse -v2`,
 * lib/libswan/v2_proposals.c): proposals separated by `,`, each
 * `<encr>[-<prf>][-<dh>]` or `<encr>-<integ>[-<prf>][-<dh>]`, where each part may list
 * alternatives joined by `+` and `;` may stand before the DH part instead of `-`. An
 * encryption algorithm may carry a key length (`aes256`, `aes_256`, `aes-256`). Names are
 * matched without regard to case. A part left out takes libreswan's defaults.
 *
 * The names are those `ipsec algparse -v -ta` lists for IKEv2 IKE (Debian's libreswan 4.10,
 * built with NSS); test/ike.test.ts compares this parser with that program.
 */

interface Encryption {
  /** Key lengths it takes; empty: none may be given. */
  readonly keyLengths: readonly number[];
  readonly aead: boolean;
}

const AES_KEYS = [128, 192, 256] as const;

const ENCRYPTION: ReadonlyMap<string, Encryption> = new Map(
  (
    [
      [["3des_cbc", "3des"], [], false],
      [["camellia_cbc", "camellia"], AES_KEYS, false],
      [["aes_gcm_16", "aes_gcm", "aes_gcm_c"], AES_KEYS, true],
      [["aes_gcm_12", "aes_gcm_b"], AES_KEYS, true],
      [["aes_gcm_8", "aes_gcm_a"], AES_KEYS, true],
      [["aes_ctr", "aesctr"], AES_KEYS, false],
      [["aes_cbc", "aes"], AES_KEYS, false],
      [["chacha20_poly1305", "chacha20poly1305"], [], true],
    ] as const
  ).flatMap(([names, keyLengths, aead]) =>
    names.map((n): [string, Encryption] => [n, { keyLengths, aead }]),
  ),
);

/** Names libreswan knows but does not allow in an IKE SA (ESP only, or not built in). */
const NOT_FOR_IKE = new Set([
  "aes_ccm_16",
  "aes_ccm",
  "aes_ccm_c",
  "aes_ccm_12",
  "aes_ccm_b",
  "aes_ccm_8",
  "aes_ccm_a",
  "camellia_ctr",
  "null_auth_aes_gmac",
  "aes_gmac",
  "null",
]);

const PRF = new Set([
  ...["hmac_md5", "md5"],
  ...["hmac_sha1", "sha", "sha1"],
  ...["hmac_sha2_256", "sha2", "sha256", "sha2_256"],
  ...["hmac_sha2_384", "sha384", "sha2_384"],
  ...["hmac_sha2_512", "sha512", "sha2_512"],
  ...["aes_xcbc", "aes128_xcbc"],
]);

/** Integrity algorithms; `none` (also `null`) is the one an AEAD cipher must have. */
const INTEG = new Set([
  ...["hmac_md5_96", "md5", "hmac_md5"],
  ...["hmac_sha1_96", "sha", "sha1", "sha1_96", "hmac_sha1"],
  ...[
    "hmac_sha2_512_256",
    "sha512",
    "sha2_512",
    "sha2_512_256",
    "hmac_sha2_512",
  ],
  ...[
    "hmac_sha2_384_192",
    "sha384",
    "sha2_384",
    "sha2_384_192",
    "hmac_sha2_384",
  ],
  ...[
    "hmac_sha2_256_128",
    "sha2",
    "sha256",
    "sha2_256",
    "sha2_256_128",
    "hmac_sha2_256",
  ],
  ...["aes_xcbc_96", "aes_xcbc", "aes128_xcbc", "aes128_xcbc_96"],
  ...["none", "null"],
]);
const INTEG_NONE = new Set(["none", "null"]);
const INTEG_NOT_FOR_IKE = new Set([
  "hmac_sha2_256_truncbug",
  "aes_cmac_96",
  "aes_cmac",
]);

/** Key exchange (DH) groups; `none` is known but never allowed for the IKE SA. */
const DH = new Set([
  ...["modp1536", "dh5"],
  ...["modp2048", "dh14"],
  ...["modp3072", "dh15"],
  ...["modp4096", "dh16"],
  ...["modp6144", "dh17"],
  ...["modp8192", "dh18"],
  ...["dh19", "ecp_256", "ecp256"],
  ...["dh20", "ecp_384", "ecp384"],
  ...["dh21", "ecp_521", "ecp521"],
  ...["dh31", "curve25519"],
]);
const DH_NONE = new Set(["none", "null", "dh0"]);
/** Groups libreswan 4 knows but was built without: too weak (modp768, modp1024) or unsupported. */
const DH_UNSUPPORTED = new Set([
  ...["modp768", "dh1"],
  ...["modp1024", "dh2"],
  ...["dh22", "dh23", "dh24"],
]);

interface Token {
  readonly text: string;
  /** The delimiter before it: `-`, `+`, `;`, or "" for the first. */
  readonly before: string;
}

class ProposalError extends Error {}

/**
 * Why libreswan 4 would refuse `ike=<text>` for an IKEv2 connection, in its words; undefined
 * when it takes it.
 */
export function ikeProblem(text: string): string | undefined {
  try {
    for (const proposal of text.split(",")) checkProposal(proposal);
    return undefined;
  } catch (e) {
    if (e instanceof ProposalError) return e.message;
    throw e;
  }
}

function checkProposal(proposal: string): void {
  const tokens: Token[] = [];
  let before = "";
  let start = 0;
  for (let i = 0; i <= proposal.length; i++) {
    const c = proposal[i];
    if (c === undefined || c === "-" || c === "+" || c === ";") {
      tokens.push({ text: proposal.slice(start, i).toLowerCase(), before });
      before = c ?? "";
      start = i + 1;
    }
  }
  let at = 0;
  const next = (): Token | undefined => tokens[at];
  const fail = (message: string): never => {
    throw new ProposalError(message);
  };

  // <encr>[+<encr>...]
  const aead: boolean[] = [];
  do {
    aead.push(encryption(tokens, at, fail));
    at +=
      tokens[at + 1]?.before === "-" && /^\d+$/.test(tokens[at + 1]!.text)
        ? 2
        : 1;
  } while (next()?.before === "+");
  if (aead.some((a) => a !== aead[0]))
    fail("AEAD and non-AEAD IKE encryption algorithms cannot be combined");

  // A list of one kind: a token, then any more joined by `+`.
  const list = (accepts: (name: string) => boolean, from: number): number => {
    let i = from;
    do {
      if (!accepts(tokens[i]!.text)) return -1;
      i++;
    } while (tokens[i]?.before === "+");
    return i;
  };

  let integ: string[] = [];
  if (next() !== undefined && next()!.before !== ";") {
    // <encr>-<prf>..., else <encr>-<integ>[-<prf>]...
    const afterPrf = list((n) => PRF.has(n), at);
    if (afterPrf >= 0) {
      at = afterPrf;
    } else {
      const afterInteg = list((n) => INTEG.has(n), at);
      if (afterInteg < 0) fail(prfError(tokens, at));
      integ = tokens.slice(at, afterInteg).map((t) => t.text);
      at = afterInteg;
      if (next() !== undefined && next()!.before !== ";") {
        const afterSecond = list((n) => PRF.has(n), at);
        if (afterSecond < 0) fail(prfError(tokens, at));
        at = afterSecond;
      }
    }
  }

  // [-;]<dh>[+<dh>...]
  if (next() !== undefined) {
    do {
      const name = next()!.text;
      if (name === "") fail("IKE DH algorithm is empty");
      if (DH_NONE.has(name)) fail("IKE DH algorithm 'none' not permitted");
      if (DH_UNSUPPORTED.has(name))
        fail(`IKE DH algorithm '${name}' is not supported`);
      if (!DH.has(name)) fail(`IKE DH algorithm '${name}' is not recognized`);
      at++;
    } while (next()?.before === "+");
  }
  if (next() !== undefined)
    fail(`IKE proposal contains unexpected '${next()!.text}'`);

  if (integ.length > 0) {
    if (aead[0] && integ.some((n) => !INTEG_NONE.has(n)))
      fail(
        "an AEAD IKE encryption algorithm must have 'none' as its integrity algorithm",
      );
    if (!aead[0] && integ.every((n) => INTEG_NONE.has(n)))
      fail(
        "a non-AEAD IKE encryption algorithm cannot have 'none' as its integrity algorithm",
      );
  }
}

/** Checks the encryption token at `at` (and a key length token after it); true for AEAD. */
function encryption(
  tokens: readonly Token[],
  at: number,
  fail: (message: string) => never,
): boolean {
  const text = tokens[at]!.text;
  if (text === "") fail("IKE encryption algorithm is empty");
  let name = text;
  let keyLength: number | undefined;
  if (!ENCRYPTION.has(name) && !NOT_FOR_IKE.has(name)) {
    const m = /^(.*?)_?(\d+)$/.exec(text);
    if (m && (ENCRYPTION.has(m[1]!) || NOT_FOR_IKE.has(m[1]!))) {
      name = m[1]!;
      keyLength = Number(m[2]);
    }
  }
  const separate = tokens[at + 1];
  if (separate?.before === "-" && /^\d+$/.test(separate.text)) {
    // `aes-256`: only after a name of its own (libreswan reads `aes256-128` as one name).
    if (keyLength !== undefined)
      fail(
        `IKE encryption algorithm '${text}-${separate.text}' is not recognized`,
      );
    keyLength = Number(separate.text);
  }
  if (NOT_FOR_IKE.has(name))
    fail(`IKE encryption algorithm '${text}' is not supported`);
  const alg = ENCRYPTION.get(name);
  if (alg === undefined)
    fail(`IKE encryption algorithm '${text}' is not recognized`);
  if (keyLength !== undefined) {
    if (alg!.keyLengths.length === 0)
      fail(`IKE encryption algorithm '${name}' takes no key length`);
    if (keyLength === 0) fail("IKE encryption key length is zero");
    if (!alg!.keyLengths.includes(keyLength))
      fail(
        `IKE encryption algorithm '${name}' with key length ${keyLength}: valid key lengths are ${alg!.keyLengths.join(", ")}`,
      );
  }
  return alg!.aead;
}

function prfError(tokens: readonly Token[], at: number): string {
  const name = tokens[at]?.text ?? "";
  if (name === "") return "IKE PRF algorithm is empty";
  return INTEG_NOT_FOR_IKE.has(name)
    ? `IKE integrity algorithm '${name}' is not supported`
    : `IKE PRF algorithm '${name}' is not recognized`;
}
