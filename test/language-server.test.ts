/**
 * Lab files in an editor: the real yaml-language-server (what VS Code's YAML extension and
 * Neovim run), spoken to over LSP on stdio, finds schema/lab.schema.json through the modeline
 * of labs/foo.yaml. The example lab gets no diagnostic, a wrong type and an unknown key get one
 * at the line gen-lab names, and completion inside `vpn:` offers the fields with their
 * descriptions.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkLabs } from "../src/index.js";
import { ROOT, skipped } from "./helpers.js";

const SERVER = path.join(
  ROOT,
  "node_modules",
  "yaml-language-server",
  "bin",
  "yaml-language-server",
);
const HANG_GUARD_MS = 60_000;
const FOO_FILE = path.join(ROOT, "labs", "foo.yaml");
const FOO = fs.readFileSync(FOO_FILE, "utf8");
const SCHEMA_FILE = path.join(ROOT, "schema", "lab.schema.json");
const SCHEMA = JSON.parse(fs.readFileSync(SCHEMA_FILE, "utf8"));

interface Diagnostic {
  range: { start: { line: number; character: number } };
  message: string;
  data?: { schemaUri?: string[] };
}
interface CompletionItem {
  label: string;
  documentation?: string | { kind: string; value: string };
}

/** What the client answers when the server asks for its settings (workspace/configuration). */
const SETTINGS: Record<string, unknown> = {
  // No schema store or Kubernetes CRD catalogue: nothing fetched from the network, and only
  // the modeline decides which schema a document gets.
  yaml: {
    validate: true,
    completion: true,
    hover: true,
    schemas: {},
    schemaStore: { enable: false },
    kubernetesCRDStore: { enable: false },
  },
  http: {},
  editor: { tabSize: 2 },
};

/**
 * A minimal LSP client: Content-Length framing, requests matched to responses by id, every
 * request of the server answered, diagnostics kept per document. Every wait ends when the
 * hang guard fires, which also kills the server.
 */
class LanguageServer {
  readonly child: ChildProcessWithoutNullStreams;
  private input = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, (message: any) => void>();
  private readonly published = new Map<string, Diagnostic[]>();
  private readonly waiting = new Map<string, (d: Diagnostic[]) => void>();
  private stderr = "";
  /** Rejects when the hang guard fires or the server exits or fails to start. */
  private readonly failed: Promise<never>;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.child = spawn(process.execPath, [SERVER, "--stdio"], {
      cwd: ROOT,
      stdio: "pipe",
    });
    this.child.stdout.on("data", (chunk: Buffer) => this.receive(chunk));
    this.child.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    let fail: (why: string) => void = () => undefined;
    this.failed = new Promise<never>((_, reject) => {
      fail = (why) =>
        reject(
          new Error(`yaml-language-server ${why}; stderr: ${this.stderr}`),
        );
    });
    this.failed.catch(() => undefined);
    this.child.on("error", (e) => fail(`failed: ${e.message}`));
    this.child.on("exit", (code, signal) => fail(`exited (${code ?? signal})`));
    this.timer = setTimeout(() => {
      fail(`hung: no answer within ${HANG_GUARD_MS / 1000} s`);
      this.kill();
    }, HANG_GUARD_MS);
  }

  /** `p`, unless the hang guard fires or the server is gone first. */
  within<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.failed]);
  }

  private send(message: object): void {
    const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }));
    this.child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.child.stdin.write(body);
  }

  request<T = any>(method: string, params: unknown): Promise<T> {
    const id = this.nextId++;
    const answer = new Promise<T>((resolve, reject) =>
      this.pending.set(id, (m) =>
        m.error
          ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`))
          : resolve(m.result),
      ),
    );
    this.send({ id, method, params });
    return this.within(answer);
  }

  notify(method: string, params: unknown): void {
    this.send({ method, params });
  }

  /** Open a document (each test its own URI) and wait for its first diagnostics. */
  open(uri: string, text: string): Promise<Diagnostic[]> {
    const diagnostics = new Promise<Diagnostic[]>((resolve) => {
      const already = this.published.get(uri);
      if (already) resolve(already);
      else this.waiting.set(uri, resolve);
    });
    this.notify("textDocument/didOpen", {
      textDocument: { uri, languageId: "yaml", version: 1, text },
    });
    return this.within(diagnostics);
  }

  private receive(chunk: Buffer): void {
    this.input = Buffer.concat([this.input, chunk]);
    for (;;) {
      const end = this.input.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(
        /Content-Length: (\d+)/i.exec(
          this.input.subarray(0, end).toString(),
        )?.[1],
      );
      if (this.input.length < end + 4 + length) return;
      const body = this.input.subarray(end + 4, end + 4 + length).toString();
      this.input = this.input.subarray(end + 4 + length);
      this.dispatch(JSON.parse(body));
    }
  }

  private dispatch(m: any): void {
    if (m.id !== undefined && m.method !== undefined) {
      // The server pulls its settings: [yaml, http, [yaml], editor] at start, then [yaml]
      // scoped to each document before validating it. Unanswered, it never validates.
      const result =
        m.method === "workspace/configuration"
          ? m.params.items.map(
              (i: { section: string }) => SETTINGS[i.section] ?? null,
            )
          : null; // client/registerCapability, window/workDoneProgress/create
      this.send({ id: m.id, result });
    } else if (m.id !== undefined) {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    } else if (m.method === "textDocument/publishDiagnostics") {
      const { uri, diagnostics } = m.params;
      // Only the first list of a document counts: each is opened once and never closed.
      if (this.published.has(uri)) return;
      this.published.set(uri, diagnostics);
      this.waiting.get(uri)?.(diagnostics);
    }
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await this.request("shutdown", null).catch(() => undefined);
      this.notify("exit", null);
      await Promise.race([exited, this.failed]).catch(() => undefined);
    }
    this.kill();
    clearTimeout(this.timer);
  }

  kill(): void {
    const pid = this.child.pid;
    if (
      pid !== undefined &&
      this.child.exitCode === null &&
      this.child.signalCode === null
    )
      process.kill(pid, "SIGKILL");
  }
}

let server: LanguageServer | undefined;

test.before(async () => {
  if (!fs.existsSync(SERVER)) return;
  const started = new LanguageServer();
  server = started;
  const init = await started
    .request("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(ROOT).href,
      workspaceFolders: [{ uri: pathToFileURL(ROOT).href, name: "gen-lab" }],
      capabilities: {
        workspace: { configuration: true },
        textDocument: {
          completion: {
            completionItem: {
              snippetSupport: true,
              documentationFormat: ["markdown", "plaintext"],
            },
          },
          hover: { contentFormat: ["markdown", "plaintext"] },
          publishDiagnostics: {},
        },
      },
    })
    .catch(async (e) => {
      await started.stop();
      throw e;
    });
  assert.is(init.serverInfo?.name, "yaml-language-server");
  server.notify("initialized", {});
});

test.after(async () => {
  await server?.stop();
});

/** A URI next to labs/foo.yaml (never written), so the modeline's relative path holds. */
const uriOf = (name: string) =>
  pathToFileURL(path.join(ROOT, "labs", `${name}.yaml`)).href;

/** The 0-based line of the first line of `text` matching `at`. */
function lineOf(text: string, at: RegExp): number {
  const line = text.split("\n").findIndex((l) => at.test(l));
  assert.ok(line >= 0, `a line matches ${at}`);
  return line;
}

/** gen-lab's errors for `text`, as 0-based lines and paths. */
function genLabErrors(text: string): { line: number; path: string }[] {
  return checkLabs([{ file: "lab.yaml", text }])
    .diagnostics.filter((d) => d.severity === "error")
    .map((d) => ({ line: d.line - 1, path: d.path }));
}

function unavailable(): boolean {
  if (server) return false;
  skipped(
    `no yaml-language-server in node_modules (npm ci installs it): ${SERVER}`,
  );
  return true;
}

test("labs/foo.yaml, with its modeline, gets no diagnostic, and the schema is the one it applies", async () => {
  if (unavailable()) return;
  const uri = pathToFileURL(FOO_FILE).href;
  assert.equal(await server!.open(uri, FOO), []);
  // Not silence for want of a schema: hovering `vpn` shows the schema's description.
  const line = lineOf(FOO, /^vpn:/);
  const hover = await server!.request("textDocument/hover", {
    textDocument: { uri },
    position: { line, character: 1 },
  });
  assert.ok(
    JSON.stringify(hover).includes("The lab's VPN endpoint"),
    JSON.stringify(hover),
  );
});

test("a wrong type gets a diagnostic at its line, the line gen-lab names", async () => {
  if (unavailable()) return;
  const text = FOO.replace(/^( {6}port:) 1194\b/m, '$1 "1194"').replace(
    /^pipeline:/m,
    "workers: { max_instances: ten }\n\n$&",
  );
  const port = lineOf(text, /^ {6}port: "1194"/);
  const workers = lineOf(text, /^workers:/);
  const diagnostics = await server!.open(uriOf("editor-wrong-type"), text);
  assert.equal(
    diagnostics.map((d) => [d.range.start.line, d.message]),
    [
      [port, 'Incorrect type. Expected "integer".'],
      [workers, 'Incorrect type. Expected "integer".'],
    ],
  );
  // The schema found through the modeline, relative to the document.
  for (const d of diagnostics)
    assert.equal(d.data?.schemaUri, [pathToFileURL(SCHEMA_FILE).href]);
  assert.equal(
    genLabErrors(text).map((d) => d.line),
    [port, workers],
  );
});

test("an unknown key, in vpn or at the top, gets a diagnostic at its line", async () => {
  if (unavailable()) return;
  const text = FOO.replace(/^ {2}remote: .*\n/m, "$&  remot: x\n").replace(
    /^egress:/m,
    "egres:",
  );
  const remot = lineOf(text, /^ {2}remot: x/);
  const egres = lineOf(text, /^egres:/);
  const diagnostics = await server!.open(uriOf("editor-unknown-key"), text);
  assert.equal(
    diagnostics.map((d) => [d.range.start.line, d.message]),
    [
      [remot, "Property remot is not allowed."],
      [egres, "Property egres is not allowed."],
    ],
  );
  assert.equal(
    genLabErrors(text).map((d) => d.line),
    [remot, egres],
  );
});

/** Completion at the end of the (empty, indented) line below the one matching `at`: label -> documentation. */
async function completeBelow(
  name: string,
  text: string,
  at: RegExp,
): Promise<Map<string, string>> {
  const line = lineOf(text, at) + 1;
  const uri = uriOf(name);
  await server!.open(uri, text);
  const list = await server!.request("textDocument/completion", {
    textDocument: { uri },
    position: { line, character: text.split("\n")[line]!.length },
  });
  const items: CompletionItem[] = Array.isArray(list) ? list : list.items;
  return new Map(
    items.map((i) => [
      i.label,
      typeof i.documentation === "string"
        ? i.documentation
        : (i.documentation?.value ?? ""),
    ]),
  );
}

test("completion in an empty `vpn:` offers the tunnel fields, with their descriptions", async () => {
  if (unavailable()) return;
  const text = FOO.replace(/^vpn:\n(?: {2}.*\n)+/m, "vpn:\n  \n");
  const offered = await completeBelow("editor-vpn", text, /^vpn:/);
  const expected = new Map<string, string>();
  for (const variant of SCHEMA.properties.vpn.oneOf)
    for (const [field, s] of Object.entries<any>(variant.properties))
      expected.set(field, s.description);
  assert.equal([...expected.keys()].sort(), [
    "auth",
    "ca",
    "cipher",
    "endpoint_port",
    "ike",
    "keepalive",
    "protocol",
    "public_key",
    "remote",
    "type",
  ]);
  for (const [field, description] of expected) {
    assert.ok(offered.has(field), `${field} offered: ${[...offered.keys()]}`);
    assert.is(offered.get(field), description, field);
  }
});

test("completion in a runner's empty `vpn:` offers its credential and tunnel fields, port among them", async () => {
  if (unavailable()) return;
  const text = FOO.replace(
    /^ {4}vpn: .*\n(?: {6}.*\n)+/m,
    "    vpn:\n      \n",
  );
  const offered = await completeBelow("editor-runner-vpn", text, /^ {4}vpn:$/);
  const fields = SCHEMA.properties.runners.items.properties.vpn.properties;
  assert.ok(Object.keys(fields).length >= 10);
  for (const [field, s] of Object.entries<any>(fields)) {
    assert.ok(offered.has(field), `${field} offered: ${[...offered.keys()]}`);
    assert.is(offered.get(field), s.description, field);
  }
  assert.match(offered.get("port")!, /listening port for this runner/);
});

test.run();
