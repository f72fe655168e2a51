/**
 * Every tunnel type of lab format v1, and labs that share a runner host without touching
 * each other: NM ids, uuids, iptables chains and drop-in paths all differ; secrets never
 * reach the output; the secret loader puts them where NM reads them.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  checkLabs,
  generate,
  parseLab,
  parseLabs,
  type GeneratedFile,
} from "../src/index.js";
import { FIXTURES, ROOT, tempDir } from "./helpers.js";

const read = (name: string) =>
  fs.readFileSync(path.join(FIXTURES, name), "utf8");
const filesOf = (fixture: string) => generate(parseLab(read(fixture), fixture));
const one = (files: readonly GeneratedFile[], suffix: string) => {
  const found = files.filter((f) => f.path.endsWith(suffix));
  assert.ok(found.length >= 1, `a file ending in ${suffix}`);
  return found[0]!;
};
const sections = (text: string) =>
  [...text.matchAll(/^\[(.+)\]$/gm)].map((m) => m[1]!);

test("wireguard: native profile, one peer section named by the public key, intranet-only allowed-ips", () => {
  const files = filesOf("wireguard.yaml");
  const vpn = one(
    files,
    "wg-a/rootfs/etc/NetworkManager/system-connections/wglab-vpn.nmconnection",
  ).contents;
  assert.match(vpn, /^type=wireguard$/m);
  assert.equal(
    sections(vpn).filter((s) => s.startsWith("wireguard-peer")),
    ["wireguard-peer.xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="],
  );
  assert.match(vpn, /^endpoint=wg\.example\.com:51820$/m);
  assert.match(vpn, /^allowed-ips=10\.70\.0\.0\/16;10\.71\.0\.0\/24;$/m);
  assert.match(vpn, /^persistent-keepalive=15$/m);
  assert.match(vpn, /^address1=10\.250\.0\.2\/32$/m);
  assert.match(vpn, /^never-default=true$/m);
  assert.not.match(vpn, /private-key=/);
  const b = one(
    files,
    "wg-b/rootfs/etc/NetworkManager/system-connections/wglab-vpn.nmconnection",
  ).contents;
  assert.match(
    b,
    /^endpoint=wg\.example\.com:51821$/m,
    "a runner's own port overrides endpoint_port",
  );
  // A device connection: NM dispatches up/down, not vpn-up/vpn-down.
  assert.match(
    one(files, "wg-a/rootfs/etc/NetworkManager/dispatcher.d/90-gen-lab-wglab")
      .contents,
    /^ {2}up\|vpn-up\)$/m,
  );
});

test("nmcli keeps the wireguard peer as one section (dots in its name are not nesting)", () => {
  const vpn = one(filesOf("wireguard.yaml"), "wglab-vpn.nmconnection").contents;
  const r = spawnSync("nmcli", ["--offline", "connection", "modify"], {
    input: vpn,
    encoding: "utf8",
  });
  assert.is(r.status, 0, r.stderr);
  assert.equal(
    sections(r.stdout).filter((s) => s.startsWith("wireguard")),
    [
      "wireguard",
      "wireguard-peer.xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    ],
  );
});

test("ipsec: libreswan IKEv2 profile, PSK left to the loader", () => {
  const vpn = one(filesOf("ipsec.yaml"), "sw-vpn.nmconnection").contents;
  assert.match(
    vpn,
    /^service-type=org\.freedesktop\.NetworkManager\.libreswan$/m,
  );
  assert.match(vpn, /^ikev2=insist$/m);
  assert.match(vpn, /^right=203\.0\.113\.50$/m);
  assert.match(vpn, /^ike=aes256-sha256-modp2048$/m);
  assert.not.match(vpn, /pskvalue=/);
});

/**
 * The libreswan conn NetworkManager-libreswan would write from a profile's [vpn] data (its
 * keys as ipsec.conf options), read by Debian's libreswan 4.10 (`readwriteconf`): what
 * libreswan refuses to load. Empty when it loads the conn.
 */
function libreswanRefuses(keyfile: string): string {
  const vpn = keyfile.split(/^\[vpn\]$/m)[1]!.split(/^\[/m)[0]!;
  const options = ["right", "ikev2", "ike", "rightsubnet"].flatMap((key) => {
    const m = new RegExp(`^${key}=(.*)$`, "m").exec(vpn);
    return m ? [`\t${key}=${m[1]}`] : [];
  });
  const { dir, cleanup } = tempDir();
  try {
    const conf = path.join(dir, "ipsec.conf");
    fs.writeFileSync(
      conf,
      [
        "config setup",
        "",
        "conn lab",
        "\tleft=%defaultroute",
        "\tauthby=secret",
        "\tleftmodecfgclient=yes",
        ...options,
        "\tauto=add",
        "",
      ].join("\n"),
    );
    const r = spawnSync(
      "/usr/libexec/ipsec/readwriteconf",
      ["--config", conf],
      { encoding: "utf8" },
    );
    assert.is(r.error, undefined, "runs readwriteconf");
    return [r.stdout, r.stderr]
      .join("\n")
      .split("\n")
      .filter((l) => /bad|ignoring|error/i.test(l))
      .join("\n");
  } finally {
    cleanup();
  }
}

test("ipsec: libreswan 4 loads the conn; with two intranet ranges it refuses, and gen-lab warns", () => {
  const vpn = one(filesOf("ipsec.yaml"), "sw-vpn.nmconnection").contents;
  assert.is(libreswanRefuses(vpn), "");

  const text = read("ipsec.yaml").replace(
    "cidrs: [10.80.0.0/16]",
    "cidrs: [10.80.0.0/16, 10.81.0.0/16]",
  );
  assert.ok(text.includes("10.81.0.0/16"), "the fixture names its range");
  const result = checkLabs([{ file: "ipsec.yaml", text }]);
  const two = one(generate(result.labs!), "sw-vpn.nmconnection").contents;
  assert.match(
    libreswanRefuses(two),
    /bad subnet rightsubnet=10\.80\.0\.0\/16,10\.81\.0\.0\/16/,
  );
  const warning = result.diagnostics.find((d) => d.path === "intranet.cidrs");
  assert.is(warning?.severity, "warning", JSON.stringify(result.diagnostics));
  assert.match(warning!.message, /libreswan 5 or later/);
});

test("no secret material in any generated file of any fixture", () => {
  for (const fixture of fs
    .readdirSync(FIXTURES)
    .filter((f) => f.endsWith(".yaml"))) {
    for (const f of filesOf(fixture)) {
      assert.not.match(
        f.contents,
        /-----BEGIN|^private-key=|^pskvalue=|^static-key=-----/m,
        `${fixture}: ${f.path}`,
      );
    }
  }
});

/** Run a generated loader with its two absolute paths moved into a temp dir. */
function runLoader(
  script: string,
  keyfile: string,
  secret: string,
): ReturnType<typeof spawnSync> {
  const patched = script
    .replace(/^readonly SECRET_FILE=.*$/m, `readonly SECRET_FILE=${secret}`)
    .replace(/^readonly KEYFILE=.*$/m, `readonly KEYFILE=${keyfile}`);
  return spawnSync("bash", ["-c", patched], {
    encoding: "utf8",
    env: { ...process.env, PATH: "/usr/bin:/bin" },
  });
}

test("the loaders put a WireGuard key and an IPsec PSK into the keyfile NM reads, idempotently, 0600", () => {
  const { dir, cleanup } = tempDir();
  try {
    const wg = filesOf("wireguard.yaml");
    const keyfile = path.join(dir, "wglab-vpn.nmconnection");
    fs.writeFileSync(
      keyfile,
      one(
        wg,
        "wg-a/rootfs/etc/NetworkManager/system-connections/wglab-vpn.nmconnection",
      ).contents,
      { mode: 0o600 },
    );
    const key = "oHU+IAyY5jaeHVA2na44PExodIZyuQgqluw08N8Z23Q=";
    fs.writeFileSync(path.join(dir, "wg.key"), `${key}\n`);
    const loader = one(
      wg,
      "wg-a/rootfs/usr/local/sbin/gen-lab-wglab-load-secrets",
    ).contents;
    for (let i = 0; i < 2; i++) {
      const r = runLoader(loader, keyfile, path.join(dir, "wg.key"));
      assert.is(r.status, 0, String(r.stderr));
    }
    const text = fs.readFileSync(keyfile, "utf8");
    assert.is(
      text.split(`private-key=${key}`).length - 1,
      1,
      "the key once, after two runs",
    );
    assert.is(fs.statSync(keyfile).mode & 0o777, 0o600);
    const nm = spawnSync("nmcli", ["--offline", "connection", "modify"], {
      input: text,
      encoding: "utf8",
    });
    assert.is(nm.status, 0, nm.stderr);
    assert.match(
      nm.stdout,
      new RegExp(`^private-key=${key.replace(/[+/]/g, "\\$&")}$`, "m"),
      "NM reads the key",
    );

    fs.writeFileSync(path.join(dir, "bad.key"), "not a key\n");
    const bad = runLoader(loader, keyfile, path.join(dir, "bad.key"));
    assert.is(bad.status, 1);
    assert.match(String(bad.stderr), /does not hold a WireGuard private key/);

    const sw = filesOf("ipsec.yaml");
    const swKeyfile = path.join(dir, "sw-vpn.nmconnection");
    fs.writeFileSync(swKeyfile, one(sw, "sw-vpn.nmconnection").contents, {
      mode: 0o600,
    });
    fs.writeFileSync(path.join(dir, "psk"), " a\\b;c#d\n");
    const r = runLoader(
      one(sw, "gen-lab-sw-load-secrets").contents,
      swKeyfile,
      path.join(dir, "psk"),
    );
    assert.is(r.status, 0, String(r.stderr));
    assert.match(
      fs.readFileSync(swKeyfile, "utf8"),
      /^\[vpn-secrets\]\npskvalue=\\sa\\\\b;c#d$/m,
      "GLib-escaped PSK in [vpn-secrets]",
    );
  } finally {
    cleanup();
  }
});

test("two labs on one host: distinct NM ids, uuids, chains, interfaces and file paths", () => {
  const [a, b] = parseLabs([
    {
      file: "foo.yaml",
      text: fs.readFileSync(path.join(ROOT, "labs", "foo.yaml")),
    },
    { file: "qux.yaml", text: read("openvpn-tls-egress.yaml") },
  ]);
  const ra = a!.runners[0]!;
  const rb = b!.runners[0]!;
  assert.not.equal(ra.connections.vpnId, rb.connections.vpnId);
  assert.not.equal(ra.connections.vpnUuid, rb.connections.vpnUuid);
  assert.not.equal(ra.connections.uplinkUuid, rb.connections.uplinkUuid);
  assert.not.equal(a!.chains, b!.chains);
  const rootfsPaths = (files: readonly GeneratedFile[]) =>
    files
      .filter((f) => f.path.includes("/rootfs/"))
      .map((f) => f.path.replace(/^.*\/rootfs\//, ""));
  const pa = new Set(rootfsPaths(generate(a!)));
  for (const p of rootfsPaths(generate(b!)))
    assert.not.ok(pa.has(p), `${p} would be overwritten by the other lab`);
});

test("uuids are stable and differ per runner, role, lab and environment", () => {
  const foo = parseLab(
    fs.readFileSync(path.join(ROOT, "labs", "foo.yaml")),
    "foo.yaml",
  );
  assert.is(
    foo.runners[0]!.connections.vpnUuid,
    parseLab(
      fs.readFileSync(path.join(ROOT, "labs", "foo.yaml")),
      "other/name.yaml",
    ).runners[0]!.connections.vpnUuid,
  );
  const staging = parseLab(
    fs
      .readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8")
      .replace(/^environment: prod /m, "environment: staging "),
    "foo.yaml",
  );
  const all = [foo, staging].flatMap((l) =>
    l.runners.flatMap((r) => [r.connections.vpnUuid, r.connections.uplinkUuid]),
  );
  assert.is(new Set(all).size, all.length);
  for (const u of all)
    assert.match(
      u,
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
});

test("openvpn: gen-lab refuses with a static key exactly the ciphers `openvpn --show-ciphers` marks TLS-only, and takes every one with TLS", () => {
  const shown = spawnSync("openvpn", ["--show-ciphers"], { encoding: "utf8" });
  assert.is(shown.status, 0, "openvpn --show-ciphers");
  const listed = [
    ...shown.stdout.matchAll(/^([A-Z0-9]+(?:-[A-Z0-9]+)+) +\((.*)\)$/gm),
  ].map((m) => ({
    cipher: m[1]!,
    tlsOnly: /TLS client\/server mode only/.test(m[2]!),
  }));
  assert.ok(listed.length > 20, `openvpn lists its ciphers: ${listed.length}`);
  const foo = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");
  const tls = fs.readFileSync(
    path.join(FIXTURES, "openvpn-tls-egress.yaml"),
    "utf8",
  );
  const errors = (text: string) =>
    checkLabs([{ file: "lab.yaml", text }]).diagnostics.filter(
      (d) => d.severity === "error",
    );
  for (const { cipher, tlsOnly } of listed) {
    const staticKey = errors(
      foo.replace(/cipher: AES-256-CBC/, `cipher: ${cipher}`),
    );
    assert.is(
      staticKey.length > 0,
      tlsOnly,
      `${cipher} with a static key: ${staticKey.map((d) => d.message).join("; ") || "accepted"}`,
    );
    const withTls = errors(
      tls.replace(
        "  protocol: tcp\n",
        `  protocol: tcp\n  cipher: ${cipher}\n`,
      ),
    );
    assert.equal(withTls, [], `${cipher} with TLS`);
  }
});

test.run();
