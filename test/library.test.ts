/**
 * gen-lab as a dependency: a tiny TypeScript consumer, compiled by tsc with NodeNext
 * resolution against the package's `exports`, then run; and the library's contract.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  checkLabs,
  checkTree,
  generate,
  LabError,
  parseLab,
  parseLabs,
  writeTree,
  type LabModel,
} from "../src/index.js";
import { readTree, ROOT, tempDir, validFixtures } from "./helpers.js";

const FOO = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");

test('a TypeScript project imports { loadLabs, generate, writeTree } from "gen-lab", compiles and runs', () => {
  const { dir, cleanup } = tempDir("gen-lab-consumer-");
  try {
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(ROOT, path.join(dir, "node_modules", "gen-lab"), "dir");
    fs.symlinkSync(
      path.join(ROOT, "node_modules", "@types"),
      path.join(dir, "node_modules", "@types"),
      "dir",
    );
    fs.writeFileSync(
      path.join(dir, "package.json"),
      JSON.stringify({ name: "consumer", type: "module", private: true }),
    );
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          outDir: "dist",
          skipLibCheck: false,
          types: ["node"],
        },
        include: ["main.ts"],
      }),
    );
    fs.writeFileSync(
      path.join(dir, "main.ts"),
      `import { loadLabs, generate, writeTree, checkTree, LabError, type GeneratedFile, type LabModel, type TreeChange } from 'gen-lab';
const [lab]: LabModel[] = loadLabs([${JSON.stringify(path.join(ROOT, "labs", "foo.yaml"))}]);
const files: GeneratedFile[] = generate(lab!);
const runners: string[] = lab!.runners.map((r) => r.name);
const written: TreeChange[] = writeTree("out", files);
const drift = checkTree("out", files).changes.filter((c) => c.changed.length > 0).length;
let errors = 0;
try {
  loadLabs(['/nonexistent/lab.yaml']);
} catch (e) {
  if (e instanceof LabError) errors = e.diagnostics.length;
}
console.log(JSON.stringify({ files: files.length, runners, added: written[0]!.added.length, drift, errors }));
`,
    );
    const tsc = spawnSync(
      process.execPath,
      [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", dir],
      { encoding: "utf8" },
    );
    assert.is(tsc.status, 0, tsc.stdout + tsc.stderr);
    const run = spawnSync(
      process.execPath,
      [path.join(dir, "dist", "main.js")],
      { encoding: "utf8", cwd: dir },
    );
    assert.is(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as {
      files: number;
      runners: string[];
      added: number;
      drift: number;
      errors: number;
    };
    assert.ok(result.files > 10);
    assert.equal(result.runners, ["foo-1", "foo-2"]);
    assert.is(result.added, result.files);
    assert.is(result.drift, 0);
    assert.is(result.errors, 1);
  } finally {
    cleanup();
  }
});

test("LabError carries every diagnostic as data; checkLabs returns them without throwing", () => {
  const bad = FOO.replace(
    "address: 172.31.200.10 ",
    "address: 172.31.200.3 ",
  ).replace("name: foo ", "name: Foo ");
  const result = checkLabs([{ file: "labs/foo.yaml", text: bad }]);
  assert.is(result.labs, undefined);
  assert.ok(result.diagnostics.length >= 1);
  try {
    parseLab(bad, "labs/foo.yaml");
    assert.unreachable("parseLab throws");
  } catch (e) {
    assert.instance(e, LabError);
    assert.equal((e as LabError).diagnostics, result.diagnostics);
  }
});

test("a model the caller builds (a fixture) is accepted by generate, and renders like the parsed one", () => {
  const parsed = parseLab(FOO, "labs/foo.yaml");
  const fixture: LabModel = JSON.parse(JSON.stringify(parsed)) as LabModel;
  assert.equal(generate(fixture), generate(parsed));
  const renamed: LabModel = { ...fixture, name: "bar" };
  assert.ok(generate(renamed).every((f) => f.path.startsWith("bar/")));
});

test("generate() returns the files of several labs in code-point order of their paths, each lab with its manifest", () => {
  const labs = parseLabs(
    validFixtures().map((f) => ({ file: f, text: fs.readFileSync(f) })),
  );
  const files = generate(labs);
  const paths = files.map((f) => f.path);
  assert.equal(
    paths,
    [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  for (const lab of labs)
    assert.ok(paths.includes(`${lab.name}/.gen-lab-manifest.json`), lab.name);
  assert.ok(
    files.every((f) => f.contents.endsWith("\n")),
    "every file ends with a newline",
  );
});

test("writeTree and checkTree take only <lab>/<path> paths: anything else is a TypeError and nothing is written", () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const p of [
      "foo",
      "../foo/x",
      "foo/../x",
      "/foo/x",
      "foo//x",
      "foo/./x",
    ]) {
      assert.throws(
        () => writeTree(dir, [{ path: p, mode: 0o644, contents: "x\n" }]),
        TypeError,
        p,
      );
      assert.throws(
        () => checkTree(dir, [{ path: p, mode: 0o644, contents: "x\n" }]),
        TypeError,
        p,
      );
    }
    assert.equal(fs.readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test("writeTree writes what checkTree then finds up to date, with exact modes under any umask", () => {
  const { dir, cleanup } = tempDir();
  const umask = process.umask(0o077);
  try {
    const files = generate(parseLab(FOO, "labs/foo.yaml"));
    const changes = writeTree(dir, files);
    assert.is(changes[0]!.added.length, files.length);
    assert.equal(checkTree(dir, files).diff, "");
    const tree = readTree(dir);
    for (const f of files) assert.is(tree.get(f.path)?.mode, f.mode, f.path);
  } finally {
    process.umask(umask);
    cleanup();
  }
});

test("the built library, with its templates compiled at build time, generates exactly what the sources do", async () => {
  const built = (await import(
    pathToFileURL(path.join(ROOT, "dist", "index.js")).href
  )) as typeof import("../src/index.js");
  const texts = validFixtures().map((f) => ({
    file: f,
    text: fs.readFileSync(f),
  }));
  assert.equal(
    built.generate(built.parseLabs(texts)),
    generate(parseLabs(texts)),
  );
});

test.run();
