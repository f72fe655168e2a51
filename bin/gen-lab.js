#!/usr/bin/env node
// Runs dist/cli.js; or, when scripts/bundle.mjs made one that is at least as new as
// dist/cli.js, the single-file bundle dist/gen-lab.cjs with its V8 code cache, which starts
// several times faster (no module resolution, almost no compiling). GEN_LAB_BUNDLE=0 forces
// dist/cli.js, GEN_LAB_BUNDLE=1 the bundle.
import * as fs from "node:fs";

const dist = new URL("../dist/", import.meta.url);
const bundle = new URL("gen-lab.cjs", dist);

function bundleIsFresh() {
  const choice = process.env.GEN_LAB_BUNDLE;
  if (choice === "0") return false;
  try {
    const built = fs.statSync(bundle).mtimeMs;
    return (
      choice === "1" || built >= fs.statSync(new URL("cli.js", dist)).mtimeMs
    );
  } catch {
    return false;
  }
}

async function loadBundle() {
  const [{ default: vm }, { createRequire }, { fileURLToPath }] =
    await Promise.all([
      import("node:vm"),
      import("node:module"),
      import("node:url"),
    ]);
  const file = fileURLToPath(bundle);
  const cacheFile = `${file}.cache`;
  const writeCache = process.env.GEN_LAB_WRITE_CODE_CACHE;
  let cachedData;
  try {
    // A cache older than the bundle belongs to another build: V8 checks only the source length.
    if (
      !writeCache &&
      fs.statSync(cacheFile).mtimeMs >= fs.statSync(file).mtimeMs
    )
      cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, "utf8")}\n})`;
  const script = new vm.Script(wrapper, { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(
    module.exports,
    createRequire(file),
    module,
    file,
    fileURLToPath(dist),
  );
  return {
    run: module.exports.run,
    saveCache: writeCache
      ? () => fs.writeFileSync(writeCache, script.createCachedData())
      : () => {},
  };
}

if (bundleIsFresh()) {
  const { run, saveCache } = await loadBundle();
  await run();
  saveCache();
} else {
  const { run } = await import("../dist/cli.js");
  await run();
}
