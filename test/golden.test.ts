/**
 * Golden trees: each valid fixture generates exactly the files under test/golden/<case>/, with
 * the same contents and modes (modes as recorded in each lab's manifest, since version control
 * keeps only the executable bit). `npm run test:update` rewrites them; review the diff like code.
 * Also: out/ holds exactly what labs/ generates (CI fails when it is stale).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkTree, generate, parseLabs } from "../src/index.js";
import { GOLDEN, ROOT, readTree, validFixtures } from "./helpers.js";

const update = process.env["UPDATE_GOLDEN"] === "1";

for (const fixture of validFixtures()) {
  const name = path.basename(fixture, ".yaml");
  test(`golden: ${name}`, () => {
    const lab = parseLabs([
      { file: `test/fixtures/${name}.yaml`, text: fs.readFileSync(fixture) },
    ]);
    const files = generate(lab);
    const dir = path.join(GOLDEN, name);
    if (update) {
      fs.rmSync(dir, { recursive: true, force: true });
      for (const f of files) {
        fs.mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
        fs.writeFileSync(path.join(dir, f.path), f.contents, { mode: f.mode });
        fs.chmodSync(path.join(dir, f.path), f.mode);
      }
    }
    const expected = readTree(dir);
    assert.equal(
      files.map((f) => f.path),
      [...expected.keys()],
      "the set of generated files differs from the golden tree (npm run test:update, then review)",
    );
    for (const f of files) {
      assert.fixture(
        f.contents,
        expected.get(f.path)!.contents,
        `contents of ${f.path}`,
      );
      // Exact modes are checked against the golden manifest (it records them), the x bit on disk too.
      assert.is(
        (f.mode & 0o111) !== 0,
        (expected.get(f.path)!.mode & 0o111) !== 0,
        `executable bit of ${f.path}`,
      );
    }
  });
}

test("out/ is exactly what labs/*.yaml generate (run `npm run generate` when this fails)", () => {
  const labsDir = path.join(ROOT, "labs");
  const labFiles = fs
    .readdirSync(labsDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  assert.ok(labFiles.length > 0, "labs/ has lab files");
  const labs = parseLabs(
    labFiles.map((f) => ({
      file: `labs/${f}`,
      text: fs.readFileSync(path.join(labsDir, f)),
    })),
  );
  const { changes, diff } = checkTree(path.join(ROOT, "out"), generate(labs));
  const stale = changes.filter(
    (c) => c.added.length + c.changed.length + c.removed.length > 0,
  );
  assert.equal(stale, [], `out/ is stale:\n${diff.slice(0, 4000)}`);
});

test.run();
