#!/usr/bin/env node
// Runs dist/cli.js; or, when scripts/bundle.mjs made one that is at least as new as
// dist/cli.js, the single-file bundle dist/gen-lab.cjs with its V8 code cache, which starts
// several times faster (no module resolution, almost no compiling). GEN_LAB_BUNDLE=0 forces
// dist/cli.js, GEN_LAB_BUNDLE=1 the bundle.
//
// CommonJS (bin/package.json says so): an ES module as the entry point costs Node ~5 ms more
// to start, a tenth of a bare `node -e 0`.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const dist = path.join(__dirname, "..", "dist");
const bundle = path.join(dist, "gen-lab.cjs");

function bundleIsFresh() {
  const choice = process.env.GEN_LAB_BUNDLE;
  if (choice === "0") return false;
  try {
    const built = fs.statSync(bundle).mtimeMs;
    return (
      choice === "1" || built >= fs.statSync(path.join(dist, "cli.js")).mtimeMs
    );
  } catch {
    return false;
  }
}

function loadBundle() {
  const vm = require("node:vm");
  const { createRequire } = require("node:module");
  const cacheFile = `${bundle}.cache`;
  const writeCache = process.env.GEN_LAB_WRITE_CODE_CACHE;
  let cachedData;
  try {
    // A cache older than the bundle belongs to another build: V8 checks only the source length.
    if (
      !writeCache &&
      fs.statSync(cacheFile).mtimeMs >= fs.statSync(bundle).mtimeMs
    )
      cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(bundle, "utf8")}\n})`;
  const script = new vm.Script(wrapper, { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(
    module.exports,
    createRequire(bundle),
    module,
    bundle,
    dist,
  );
  return {
    run: module.exports.run,
    saveCache: writeCache
      ? () => fs.writeFileSync(writeCache, script.createCachedData())
      : () => {},
  };
}

(async () => {
  if (bundleIsFresh()) {
    const { run, saveCache } = loadBundle();
    await run();
    saveCache();
  } else {
    const { run } = await import("../dist/cli.js");
    await run();
  }
})();
