/**
 * The package as a user gets it (issue 23): `npm pack` holds only what a user needs, and the
 * packed tarball, installed into a fresh project, runs (`npx gen-lab --help`, the example lab
 * generated exactly as in this repository's out/) and type-checks a strict TypeScript consumer.
 * Nothing in the fresh project points into the repository: it has the tarball and its own
 * node_modules (npm takes the dependencies from its cache, filled by `npm ci`, or the registry).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readTree, ROOT, tempDir } from "./helpers.js";

const npm = (args: readonly string[], cwd: string) => {
  const r = spawnSync("npm", [...args], {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      npm_config_fund: "false",
      npm_config_audit: "false",
    },
    timeout: 300_000, // a hang guard: an install may fetch from the registry
  });
  assert.is(r.status, 0, `npm ${args.join(" ")}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
};

/** The version this repository's lockfile has of a development dependency. */
function locked(name: string): string {
  const lock = JSON.parse(
    fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8"),
  ) as { packages: Record<string, { version: string }> };
  return lock.packages[`node_modules/${name}`]!.version;
}

test("npm pack: dist, bin, templates, schema, README, LICENSE and package.json, nothing else", () => {
  const { dir, cleanup } = tempDir("gen-lab-pack-");
  try {
    const [packed] = JSON.parse(
      npm(["pack", "--json", "--pack-destination", dir], ROOT),
    ) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path).sort();
    const outside = files.filter(
      (f) =>
        !/^(dist|bin|templates|schema)\//.test(f) &&
        !["README.md", "LICENSE", "package.json"].includes(f),
    );
    assert.equal(outside, [], "only what a user needs");
    for (const f of [
      "LICENSE",
      "README.md",
      "bin/gen-lab.js",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/cli.js",
      "schema/lab.schema.json",
      "templates/tunnel-keeper.sh.njk",
    ])
      assert.ok(files.includes(f), `${f} is in the package`);
    // Every compiled module comes from a source file that exists: no leftovers of older builds.
    for (const f of files.filter((p) => /^dist\/.*\.js$/.test(p)))
      if (!/^dist\/gen-lab\.cjs/.test(f))
        assert.ok(
          fs.existsSync(
            path.join(ROOT, f.replace(/^dist/, "src").replace(/\.js$/, ".ts")),
          ),
          `${f} has no source in src/`,
        );
  } finally {
    cleanup();
  }
});

test("the tarball in a fresh project: npx gen-lab --help, the example lab, a strict TypeScript consumer", () => {
  const { dir, cleanup } = tempDir("gen-lab-install-");
  try {
    const [packed] = JSON.parse(
      npm(["pack", "--json", "--pack-destination", dir], ROOT),
    ) as { filename: string }[];
    const project = path.join(dir, "project");
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "lab-tooling", private: true, type: "module" }),
    );
    npm(
      [
        "install",
        "--prefer-offline",
        path.join(dir, packed!.filename),
        `typescript@${locked("typescript")}`,
        `@types/node@${locked("@types/node")}`,
      ],
      project,
    );

    const help = spawnSync("npx", ["--no-install", "gen-lab", "--help"], {
      cwd: project,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.is(help.status, 0, help.stderr);
    assert.match(help.stdout, /gen-lab <lab\.yaml\.\.\.> -o <dir>/);

    fs.copyFileSync(
      path.join(ROOT, "labs/foo.yaml"),
      path.join(project, "foo.yaml"),
    );
    const gen = spawnSync(
      "npx",
      ["--no-install", "gen-lab", "foo.yaml", "-o", "out", "-q"],
      {
        cwd: project,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    assert.is(gen.status, 0, gen.stderr);
    // Contents and the executable bit: all a checkout keeps of a mode (0600 comes out 0644).
    const tree = (dir: string) =>
      [...readTree(dir)].map(([p, f]) => [p, f.contents, f.mode & 0o111]);
    assert.equal(
      tree(path.join(project, "out")),
      tree(path.join(ROOT, "out")),
      "the installed package generates the committed out/ byte for byte",
    );

    const init = spawnSync("npx", ["--no-install", "gen-lab", "init", "bar"], {
      cwd: project,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.is(init.status, 0, init.stderr);
    const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(
      fs.readFileSync(path.join(project, "labs/bar.yaml"), "utf8"),
    );
    assert.is(
      modeline?.[1],
      "../node_modules/gen-lab/schema/lab.schema.json",
      "init's lab names the installed package's schema",
    );

    fs.writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          resolveJsonModule: true,
          types: ["node"],
        },
        include: ["check.ts"],
      }),
    );
    fs.writeFileSync(
      path.join(project, "check.ts"),
      `import { checkLabs, generate, loadLabs, LabError, type Diagnostic, type GeneratedFile, type LabModel } from "gen-lab";
import schema from "gen-lab/lab.schema.json" with { type: "json" };
const labs: LabModel[] = loadLabs(["foo.yaml"]);
const files: GeneratedFile[] = generate(labs);
const found: readonly Diagnostic[] = checkLabs([{ file: "x.yaml", text: "version: 1\\n" }]).diagnostics;
const error: LabError | undefined = found.length > 0 ? new LabError(found) : undefined;
const title: unknown = (schema as { title?: unknown }).title;
console.log(files.length, labs[0]?.runners.length, error?.diagnostics.length, title);
`,
    );
    const tsc = spawnSync("npx", ["--no-install", "tsc", "-p", "."], {
      cwd: project,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.is(
      tsc.status,
      0,
      `tsc --noEmit (strict):\n${tsc.stdout}${tsc.stderr}`,
    );
    for (const f of [
      "check.ts",
      "foo.yaml",
      "labs/bar.yaml",
      "package.json",
      "tsconfig.json",
    ])
      assert.not.match(
        fs.readFileSync(path.join(project, f), "utf8"),
        new RegExp(ROOT.replace(/[/.]/g, "\\$&")),
        f,
      );
  } finally {
    cleanup();
  }
});

test.run();
