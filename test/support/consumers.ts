/**
 * The real consumers of generated files, for tests that check many generated trees:
 * NetworkManager's keyfile parser (nmcli --offline), bash -n and shellcheck, and PyYAML (the
 * YAML 1.1 reader of gitrepo-trigger and cloud-init). Same approach as
 * test/consumers.test.ts, as functions that return problems instead of asserting.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

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
    if (!current || eq <= 0)
      throw new Error(`keyfile line outside a section or without '=': ${line}`);
    current.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return sections;
}

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

const nmcli = (input: string) =>
  spawnSync("nmcli", ["--offline", "connection", "modify"], {
    input,
    encoding: "utf8",
    timeout: 60_000,
  });

/**
 * Round-trip a keyfile through `nmcli --offline connection modify`: NM must accept it and keep
 * every key and value, or drop only keys whose removal means the same to NM (its defaults).
 * Returns what went wrong, empty when nothing did.
 */
export function nmcliProblems(text: string): string[] {
  const r = nmcli(text);
  if (r.status !== 0) return [`nmcli rejected the keyfile: ${r.stderr}`];
  const problems: string[] = [];
  const ours = parseKeyfile(text);
  const theirs = parseKeyfile(r.stdout);
  for (const [section, entries] of ours) {
    if (entries.size === 0) continue; // NM drops empty sections such as [ethernet]
    const normalized = theirs.get(section);
    if (!normalized) {
      problems.push(`NM dropped section [${section}]`);
      continue;
    }
    for (const [key, value] of entries) {
      if (normalized.has(key)) {
        if (normalized.get(key) !== value)
          problems.push(
            `[${section}] ${key}=${value} became ${normalized.get(key)}`,
          );
      } else if (nmcli(withoutKey(text, section, key)).stdout !== r.stdout) {
        problems.push(
          `[${section}] ${key}=${value} was dropped by NM but is not its default`,
        );
      }
    }
  }
  return problems;
}

/** bash -n and shellcheck (style level) of a script's text; empty when both accept it. */
export function shellProblems(script: string): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-sh-"));
  try {
    const file = path.join(dir, "script");
    fs.writeFileSync(file, script, { mode: 0o755 });
    const problems: string[] = [];
    const syntax = spawnSync("bash", ["-n", file], { encoding: "utf8" });
    if (syntax.status !== 0) problems.push(`bash -n: ${syntax.stderr}`);
    const lint = spawnSync(
      "shellcheck",
      ["--shell=bash", "--severity=style", file],
      { encoding: "utf8", timeout: 60_000 },
    );
    if (lint.status !== 0)
      problems.push(`shellcheck: ${lint.stdout}${lint.stderr}`);
    return problems;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * cloud-init's own schema check of a cloud-config text; empty when it accepts it. It also
 * requires the `#cloud-config` first line, by which cloud-init recognises user data.
 */
export function cloudInitProblems(userData: string): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-ci-"));
  try {
    const file = path.join(dir, "user-data.yaml");
    fs.writeFileSync(file, userData);
    const problems: string[] = [];
    if (!userData.startsWith("#cloud-config\n"))
      problems.push("the first line is not #cloud-config");
    const r = spawnSync("cloud-init", ["schema", "--config-file", file], {
      encoding: "utf8",
      timeout: 60_000,
    });
    if (r.status !== 0 || !/Valid cloud-config/.test(r.stdout))
      problems.push(`cloud-init schema: ${r.stdout}${r.stderr}`);
    return problems;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What a real YAML 1.1 consumer (PyYAML, as gitrepo-trigger reads the file) must get back. */
export interface PyyamlRoundTrip {
  readonly pipelineData: string;
  readonly kubernetes: string;
  readonly configKey: string;
  /** The trigger entry `main` as the lab file gave it. */
  readonly expected: Record<string, unknown>;
}

/**
 * Loads each case with PyYAML's safe_load, in one python3 process; returns the cases whose
 * trigger entry or ConfigMap text differs (or fails to load), as text.
 */
export function pyyamlMismatches(cases: readonly PyyamlRoundTrip[]): string[] {
  const script = [
    "import json, sys, yaml",
    "out = []",
    "for c in json.load(sys.stdin):",
    "    try:",
    "        data = yaml.safe_load(c['pipelineData'])",
    "        docs = list(yaml.safe_load_all(c['kubernetes']))",
    "        if data.get('main') != c['expected']:",
    "            out.append('pipeline-data: %r != %r' % (data.get('main'), c['expected']))",
    "        elif docs[0]['data'][c['configKey']] != c['pipelineData']:",
    "            out.append('ConfigMap text differs: %r' % c['expected'])",
    "    except Exception as e:",
    "        out.append('%s: %s in %r' % (type(e).__name__, e, c['expected']))",
    "json.dump(out, sys.stdout)",
  ].join("\n");
  const r = spawnSync("python3", ["-c", script], {
    input: JSON.stringify(cases),
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}
