/**
 * gen-lab as a dependency: a tiny TypeScript consumer, compiled by tsc with NodeNext
 * resolution against the package's `exports`, then run.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LabError, parseLab } from "../src/index.js";
import { ROOT, tempDir } from "./helpers.js";

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

test.run();
