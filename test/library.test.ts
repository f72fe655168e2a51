/**
 * gen-lab as a dependency: a tiny TypeScript consumer, compiled by tsc with NodeNext
 * resolution against the package's `exports`, then run.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as v8 from "node:v8";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  checkLabs,
  checkLabTrees,
  checkTree,
  generate,
  generateLab,
  LabError,
  OutputError,
  parseLab,
  parseLabs,
  writeLabTrees,
  writeTree,
  type GeneratedFile,
  type LabModel,
  type LabText,
} from "../src/index.js";
import { syntheticLabs } from "../scripts/synthetic-labs.mjs";
import { codePointOrder } from "../src/file.js";
import { readTree, ROOT, tempDir, validFixtures } from "./helpers.js";

test('a TypeScript project imports { loadLab, generate } from "gen-lab", compiles and runs', () => {
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
      `import { loadLab, generate, LabError, type GeneratedFile, type LabModel } from 'gen-lab';
const lab: LabModel = await loadLab(${JSON.stringify(path.join(ROOT, "labs", "foo.yaml"))});
const files: GeneratedFile[] = generate(lab);
const runners: string[] = lab.runners.map((r) => r.name);
try {
  await loadLab('/nonexistent/lab.yaml');
} catch (e) {
  if (!(e instanceof Error)) throw e;
}
console.log(JSON.stringify({ files: files.length, runners, isLabError: typeof LabError }));
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
      isLabError: string;
    };
    assert.ok(result.files > 10);
    assert.equal(result.runners, ["foo-1", "foo-2"]);
    assert.is(result.isLabError, "function");
  } finally {
    cleanup();
  }
});

test("LabError carries every diagnostic as data", () => {
  try {
    parseLab("version: 1\nname: Bad\n", "x.yaml");
    assert.unreachable("parseLab must throw");
  } catch (e) {
    assert.instance(e, LabError);
    const diagnostics = (e as LabError).diagnostics;
    assert.ok(diagnostics.length >= 2);
    assert.ok(
      diagnostics.every(
        (d) =>
          d.file === "x.yaml" && d.line >= 1 && d.column >= 1 && d.hint !== "",
      ),
    );
  }
});

test("checkLabs never throws for what it is given: each thing that is no lab text is an error at 1:1", () => {
  const cases: [unknown, string, RegExp][] = [
    [
      "labs/foo.yaml",
      "labs",
      /checkLabs was given a string, not an array of labs/,
    ],
    [[null], "labs[0]", /the lab is null, not \{ file, text \}/],
    [[42], "labs[0]", /the lab is a number, not \{ file, text \}/],
    [[["x"]], "labs[0]", /the lab is an array, not \{ file, text \}/],
    [
      [{ text: "version: 1" }],
      "labs[0]",
      /the lab's file is an undefined, not a string/,
    ],
    [
      [{ file: "", text: "version: 1" }],
      "labs[0]",
      /the lab's file is an empty string/,
    ],
    [
      [{ file: "a.yaml", text: 5 }],
      "a.yaml",
      /the lab's text is a number, not a string or a Uint8Array/,
    ],
    [
      [{ file: "a.yaml", text: new ArrayBuffer(4) }],
      "a.yaml",
      /the lab's text is an object/,
    ],
  ];
  for (const [given, file, message] of cases) {
    const result = checkLabs(given as LabText[]);
    assert.is(result.labs, undefined);
    assert.equal(
      result.diagnostics.map((d) => [d.severity, d.file, d.line, d.column]),
      [["error", file, 1, 1]],
      JSON.stringify(given),
    );
    assert.match(result.diagnostics[0]!.message, message);
  }
  // One bad entry among good labs: the good ones are still checked, and nothing is made.
  const mixed = checkLabs([
    null as unknown as LabText,
    {
      file: "labs/foo.yaml",
      text: fs.readFileSync(path.join(ROOT, "labs", "foo.yaml")),
    },
  ]);
  assert.is(mixed.labs, undefined);
  assert.equal(
    mixed.diagnostics.map((d) => d.file),
    ["labs[0]"],
  );
  // parseLab reports it the documented way: a LabError.
  try {
    parseLab(123 as unknown as string);
    assert.unreachable("parseLab must throw");
  } catch (e) {
    assert.instance(e, LabError);
    assert.match(
      (e as LabError).message,
      /lab\.yaml:1:1: the lab's text is a number/,
    );
  }
});

test("generate() renders only models gen-lab validated, and they cannot be changed after", () => {
  const text = fs.readFileSync(path.join(ROOT, "labs", "foo.yaml"), "utf8");
  const foo = parseLab(text, "labs/foo.yaml");
  const refused: [string, () => unknown, RegExp][] = [
    [
      "a copy",
      () => generate({ ...foo }),
      /labs\[0\] is an object gen-lab did not make/,
    ],
    [
      "a copy with one runner changed",
      () =>
        generateLab({
          ...foo,
          runners: [{ ...foo.runners[0]!, name: "x;reboot" }],
        }),
      /generateLab\(\): labs\[0\] is an object gen-lab did not make/,
    ],
    [
      "null among labs",
      () => generate([foo, null as unknown as LabModel]),
      /labs\[1\] is null/,
    ],
    [
      "two labs checked apart, which conflict",
      () =>
        generate([
          foo,
          parseLab(text.replace(/^name: foo /m, "name: bar "), "labs/bar.yaml"),
        ]),
      /labs\[1\] and labs\[0\] were validated apart/,
    ],
    [
      "one lab twice",
      () => generate([foo, foo]),
      /labs\[1\] and labs\[0\] are both lab foo/,
    ],
  ];
  for (const [what, f, message] of refused)
    assert.throws(
      f,
      (e: unknown) => e instanceof TypeError && message.test(e.message),
      what,
    );
  // Frozen, to the last array: what was validated is what gets rendered.
  assert.is(Reflect.set(foo, "name", "bar"), false);
  assert.is(Reflect.set(foo.runners[0]!, "address", "203.0.113.9"), false);
  assert.is(Reflect.set(foo.intranet.cidrs, 0, "198.51.100.0/24"), false);
  assert.throws(
    () => (foo.intranet.cidrs as string[]).push("198.51.100.0/24"),
    TypeError,
  );
  assert.is(foo.name, "foo");
  assert.is(generate(foo).length, generateLab(foo).length);

  // writeLabTrees and checkLabTrees: refused before the output directory is touched.
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    for (const f of [
      () => writeLabTrees(out, [foo, parseLab(text, "labs/foo.yaml")]),
      () => checkLabTrees(out, [{ ...foo }]),
    ])
      assert.throws(f, TypeError);
    assert.not.ok(fs.existsSync(out));
  } finally {
    cleanup();
  }
});

test("writeTree and checkTree take only paths inside a lab's directory, each once: nothing is written otherwise", () => {
  const good = { path: "foo/README.md", mode: 0o644, contents: "x\n" };
  const refused: [string, unknown[], RegExp][] = [
    [
      "a parent directory",
      [{ ...good, path: "foo/../../etc/passwd" }],
      /no empty, "\." or "\.\." part/,
    ],
    [
      "a path above the output",
      [{ ...good, path: "../foo/x" }],
      /<lab>\/<path in the lab>/,
    ],
    [
      "an absolute path",
      [{ ...good, path: "/etc/passwd" }],
      /<lab>\/<path in the lab>/,
    ],
    ["a file as a lab", [{ ...good, path: "foo" }], /<lab>\/<path in the lab>/],
    [
      "a work directory's name",
      [{ ...good, path: ".foo.gen-lab-new/x" }],
      /<lab>\/<path in the lab>/,
    ],
    ["an empty part", [{ ...good, path: "foo//x" }], /no empty/],
    ["a NUL", [{ ...good, path: "foo/a\0b" }], /nor NUL/],
    [
      "a path twice",
      [good, good],
      /files\[1\] \(foo\/README\.md\): the path is given twice/,
    ],
    [
      "a file below a file",
      [good, { ...good, path: "foo/README.md/x" }],
      /foo\/README\.md\/x lies below foo\/README\.md/,
    ],
    [
      "a mode that is no permission bits",
      [{ ...good, mode: 0o4755 }],
      /mode must be permission bits/,
    ],
    [
      "contents that are no text",
      [{ ...good, contents: Buffer.from("x") }],
      /contents must be a string/,
    ],
    ["null", [null], /files\[0\] is not a \{ path, mode, contents \} object/],
  ];
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, "out");
    for (const [what, files, message] of refused)
      for (const f of [writeTree, checkTree])
        assert.throws(
          () => f(out, files as GeneratedFile[]),
          (e: unknown) => e instanceof TypeError && message.test(e.message),
          `${f.name}: ${what}`,
        );
    assert.equal(fs.readdirSync(dir), []);
    // The same files, well formed, are written.
    assert.equal(
      writeTree(out, [good]).map((c) => c.added),
      [["foo/README.md"]],
    );
  } finally {
    cleanup();
  }
});

test("generate() returns the files of several labs in code-point order of their paths", () => {
  // Labs given out of order, names that are prefixes of others: "ab/..." sorts before "ab0/...".
  const labs = parseLabs(
    syntheticLabs(5).map((l, i) => ({
      file: l.file,
      text: l.text.replace(
        /^name: .*$/m,
        `name: ${["ab0", "ab", "b1", "b", "a"][i]}`,
      ),
    })),
  );
  const paths = generate(labs).map((f) => f.path);
  assert.equal(paths, [...paths].sort(codePointOrder));
  assert.equal(
    [...new Set(paths.map((p) => p.split("/")[0]))],
    ["a", "ab", "ab0", "b", "b1"],
  );
});

test("generate() of many labs (rendered in batches) equals each lab's generateLab(), joined in order", () => {
  // More labs than one batch, and a count that leaves a partial last batch.
  const labs = parseLabs(
    syntheticLabs(77).map((l) => ({ file: l.file, text: l.text })),
  );
  const all = generate(labs);
  const byName = [...labs].sort((a, b) =>
    codePointOrder(`${a.name}/`, `${b.name}/`),
  );
  assert.equal(all, byName.flatMap(generateLab));
  for (const lab of labs) {
    const own = generateLab(lab).map((f) => f.path);
    assert.equal(own, [...own].sort(codePointOrder), `${lab.name}: sorted`);
    assert.ok(own.includes(`${lab.name}/.gen-lab-manifest.json`), lab.name);
  }
});

test("the built library, with its templates compiled at build time, generates exactly what the sources do", async () => {
  // dist/ renders with dist/render/templates.compiled.cjs; the sources compile templates/ on
  // first use. A template changed without a rebuild, or compiled with other options, differs.
  const compiled = path.join(ROOT, "dist", "render", "templates.compiled.cjs");
  assert.ok(fs.existsSync(compiled), `${compiled}: run npm run build first`);
  const built = (await import(
    pathToFileURL(path.join(ROOT, "dist", "index.js")).href
  )) as typeof import("../src/index.js");
  const texts = [
    ...validFixtures().map((file) => ({
      file,
      text: fs.readFileSync(file, "utf8"),
    })),
    ...syntheticLabs(12).map((l) => ({ file: l.file, text: l.text })),
  ];
  for (const { file, text } of texts)
    assert.equal(
      built.generate(built.parseLab(text, file)),
      generate(parseLab(text, file)),
      file,
    );
});

/**
 * Whether V8 stores a string one byte per character. v8.serialize writes a string with the tag
 * '"' when it is one-byte, and with 'c' (after alignment padding) when it is two-byte.
 */
function storedOneBytePerChar(text: string): boolean {
  const bytes = v8.serialize(text);
  let i = 2; // after the version header
  while (bytes[i] === 0) i++;
  return bytes[i] === 0x22;
}

test("generated ASCII files are stored one byte per character, on the first run and on later ones", () => {
  // A two-byte string holds twice the memory and is slower to hash and write. In V8 a string
  // built from a former property key can be two-byte although every character is ASCII: the
  // Terraform file was, and only on a second run over the same labs.
  const labs = parseLabs([
    ...validFixtures().map((file) => ({
      file,
      text: fs.readFileSync(file, "utf8"),
    })),
    ...syntheticLabs(40).map((l) => ({ file: l.file, text: l.text })),
  ]);
  for (let run = 1; run <= 3; run++) {
    const files = generate(labs);
    const twoByte = files
      .filter((f) => /^[\x00-\x7f]*$/.test(f.contents))
      .filter((f) => !storedOneBytePerChar(f.contents))
      .map((f) => f.path);
    assert.equal(
      twoByte,
      [],
      `run ${run}: ASCII files stored two bytes per character`,
    );
  }
});

test("checkTree and writeTree compare bytes: an invalid byte is drift, even where the text decodes alike", () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = [{ path: "x/a.txt", mode: 0o644, contents: "a\uFFFDb\n" }];
    writeTree(dir, files);
    // 0xFF decodes to U+FFFD too: only the bytes tell the difference.
    fs.writeFileSync(
      path.join(dir, "x", "a.txt"),
      Buffer.from([0x61, 0xff, 0x62, 0x0a]),
    );
    assert.equal(checkTree(dir, files).changes[0]!.changed, ["x/a.txt"]);
    assert.equal(writeTree(dir, files)[0]!.changed, ["x/a.txt"]);
    assert.equal(
      fs.readFileSync(path.join(dir, "x", "a.txt"), "utf8"),
      "a\uFFFDb\n",
    );
    assert.equal(checkTree(dir, files).changes[0]!.changed, []);
  } finally {
    cleanup();
  }
});

test("writeLabTrees (a batch of labs at a time) writes and reports exactly what writeTree(generate()) does, under any umask", () => {
  // Names where directory order and path order could disagree: "ab" sorts before "ab0", but
  // "ab0/..." before "ab/..." would not; both writers must agree with generate()'s path order.
  const labs = parseLabs(
    syntheticLabs(6).map((l, i) => ({
      file: l.file,
      text: l.text.replace(
        /^name: .*$/m,
        `name: ${["ab0", "ab", "a", "b", "ab1", "ba"][i]}`,
      ),
    })),
  );
  const { dir, cleanup } = tempDir("gen-lab-streaming-");
  const saved = process.umask(0o077);
  try {
    const whole = path.join(dir, "whole");
    const streamed = path.join(dir, "streamed");
    const files = generate(labs);
    const a = writeTree(whole, files);
    const b = writeLabTrees(streamed, labs);
    assert.equal(b, a);
    assert.equal(
      a.map((c) => c.lab),
      ["a", "ab", "ab0", "ab1", "b", "ba"],
    );
    const treeA = readTree(whole);
    assert.equal(readTree(streamed), treeA);
    // Modes are the contract's, not the umask's.
    for (const f of files) assert.is(treeA.get(f.path)?.mode, f.mode, f.path);
    assert.equal(checkLabTrees(streamed, labs), checkTree(whole, files));
    assert.is(checkLabTrees(streamed, labs).diff, "");
    // A changed lab: both checks report the same diff.
    const lab0 = path.join(streamed, "ab0", "terraform", "ab0.tf.json");
    fs.writeFileSync(lab0, "{}\n");
    fs.writeFileSync(
      path.join(whole, "ab0", "terraform", "ab0.tf.json"),
      "{}\n",
    );
    const drift = checkLabTrees(streamed, labs);
    assert.equal(drift, checkTree(whole, files));
    assert.match(drift.diff, /ab0\/terraform\/ab0\.tf\.json/);
    assert.equal(
      writeLabTrees(streamed, labs).map((c) => c.changed.length),
      [0, 0, 1, 0, 0, 0],
    );
    assert.equal(readTree(streamed), treeA);
  } finally {
    process.umask(saved);
    cleanup();
  }
});

test("a write that fails halfway changes no lab: every new tree is built before the first swap", () => {
  const { dir, cleanup } = tempDir();
  try {
    const texts = syntheticLabs(3).map((l) => ({ file: l.file, text: l.text }));
    const labs = parseLabs(texts);
    const out = path.join(dir, "out");
    writeTree(out, generate(labs));
    const before = readTree(out);
    // Every lab changes; the last lab (in path order) gets a file whose name no file system
    // takes, so its tree fails after the others' were built.
    const changed = generate(labs).map((f) =>
      f.path.endsWith(".tf.json") ? { ...f, contents: `${f.contents} ` } : f,
    );
    const last = changed[changed.length - 1]!.path.split("/")[0]!;
    changed.push({
      path: `${last}/${"x".repeat(300)}`,
      mode: 0o644,
      contents: "",
    });
    assert.throws(
      () => writeTree(out, changed),
      (e: unknown) =>
        e instanceof OutputError &&
        /cannot write .*: the path is too long/.test(e.message),
    );
    assert.equal(readTree(out), before, "no lab changed");
    assert.equal(
      fs.readdirSync(out).sort(),
      labs.map((l) => l.name).sort(),
      "no staging tree left behind",
    );
  } finally {
    cleanup();
  }
});

test.run();
