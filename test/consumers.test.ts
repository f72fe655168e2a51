/**
 * The generated files, read by the programs that will consume them on a runner or worker:
 * NetworkManager's own keyfile parser (nmcli --offline), bash and shellcheck, cloud-init.
 * Covers every golden tree and the committed out/.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { GOLDEN, ROOT, have } from "./helpers.js";

function filesUnder(dir: string, match: (p: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (match(full)) out.push(full);
    }
  };
  walk(dir);
  return out.sort();
}

const trees = [GOLDEN, path.join(ROOT, "out")];
const keyfiles = trees.flatMap((t) =>
  filesUnder(t, (p) => p.endsWith(".nmconnection")),
);
const dispatchers = trees.flatMap((t) =>
  filesUnder(
    t,
    (p) => p.includes("/dispatcher.d/") || p.includes("/usr/local/sbin/"),
  ),
);
const userData = trees.flatMap((t) =>
  filesUnder(t, (p) => p.endsWith("worker-user-data.yaml")),
);
const rel = (p: string) => path.relative(ROOT, p);

/** Parse a GLib key file into section -> key -> raw value (comments and blank lines skipped). */
export function parseKeyfile(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(
      current && eq > 0,
      `keyfile line outside a section or without '=': ${line}`,
    );
    current!.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return sections;
}

/** The keyfile text without one key of one section. */
function withoutKey(text: string, section: string, key: string): string {
  let current = "";
  return text
    .split("\n")
    .filter((line) => {
      const header = /^\[(.+)\]$/.exec(line);
      if (header) current = header[1]!;
      return !(current === section && line.startsWith(`${key}=`));
    })
    .join("\n");
}

test("the consumer programs are installed (scripts/test-all.sh installs them)", () => {
  for (const p of ["nmcli", "shellcheck", "cloud-init", "bash"])
    assert.ok(have(p), `${p} is on PATH`);
  assert.ok(
    keyfiles.length >= 4 && dispatchers.length >= 2 && userData.length >= 2,
    "there are generated files to check",
  );
});

for (const file of keyfiles) {
  test(`nmcli --offline reads ${rel(file)} and keeps every key and value`, () => {
    const text = fs.readFileSync(file, "utf8");
    const nmcli = (input: string) =>
      spawnSync("nmcli", ["--offline", "connection", "modify"], {
        input,
        encoding: "utf8",
      });
    const r = nmcli(text);
    assert.is(r.status, 0, `nmcli rejected the keyfile: ${r.stderr}`);
    const ours = parseKeyfile(text);
    const theirs = parseKeyfile(r.stdout);
    for (const [section, entries] of ours) {
      const normalized = theirs.get(section);
      if (entries.size === 0) continue; // NM drops empty sections such as [ethernet]
      assert.ok(normalized, `NM dropped section [${section}]:\n${r.stdout}`);
      for (const [key, value] of entries) {
        if (normalized!.has(key)) {
          assert.is(
            normalized!.get(key),
            value,
            `[${section}] ${key} after NM's parser`,
          );
          continue;
        }
        // NM leaves out values equal to its defaults: then the file without the line means the same.
        const without = withoutKey(text, section, key);
        assert.is(
          nmcli(without).stdout,
          r.stdout,
          `[${section}] ${key}=${value} was dropped by NM but is not its default`,
        );
      }
    }
  });
}

for (const file of dispatchers) {
  test(`bash -n and shellcheck accept ${rel(file)}`, () => {
    const syntax = spawnSync("bash", ["-n", file], { encoding: "utf8" });
    assert.is(syntax.status, 0, syntax.stderr);
    const lint = spawnSync(
      "shellcheck",
      ["--shell=bash", "--severity=style", file],
      { encoding: "utf8" },
    );
    assert.is(lint.status, 0, lint.stdout + lint.stderr);
    assert.is(fs.statSync(file).mode & 0o111, 0o111, "executable");
  });
}

for (const file of userData) {
  test(`cloud-init schema accepts ${rel(file)}`, () => {
    const r = spawnSync("cloud-init", ["schema", "--config-file", file], {
      encoding: "utf8",
    });
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Valid cloud-config/);
    assert.ok(
      fs.readFileSync(file, "utf8").startsWith("#cloud-config\n"),
      "first line is #cloud-config",
    );
  });
}

test.run();
