/**
 * The deploy steps each lab's README gives, run as written against a stand-in root directory:
 * the overlay's files keep their modes, directories the host already has keep theirs (a
 * restrictive one stays restrictive, `/` and `/etc` are not narrowed), new directories are
 * 0755 even when the tree was written under `umask 077`, and WireGuard and IPsec runners run
 * their secrets loader before the tunnel is brought up.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FIXTURES, ROOT, runCli, tempDir } from "./helpers.js";

/** The shell lines of a runner's overlay step in a lab README (the block after "copy the overlay"). */
function overlayCommands(readme: string): string[] {
  const at = readme.indexOf("copy the overlay");
  const block = readme.slice(readme.indexOf("```sh\n", at) + 6);
  return block
    .slice(0, block.indexOf("```"))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

const mode = (p: string) => (fs.statSync(p).mode & 0o7777).toString(8);

for (const [file, lab, loader] of [
  [path.join(ROOT, "labs", "foo.yaml"), "foo", false],
  [path.join(FIXTURES, "wireguard.yaml"), "wglab", true],
  [path.join(FIXTURES, "ipsec.yaml"), undefined, true],
] as const) {
  test(`${path.basename(file)}: the README's overlay copy keeps modes and the host's directories`, () => {
    const { dir, cleanup } = tempDir();
    const umask = process.umask(0o077);
    try {
      const out = path.join(dir, "out");
      const r = runCli([file, "-o", out, "-q"]);
      assert.is(r.status, 0, r.stderr);
      process.umask(umask);
      const labDir = path.join(out, lab ?? fs.readdirSync(out)[0]!);
      const commands = overlayCommands(
        fs.readFileSync(path.join(labDir, "README.md"), "utf8"),
      );
      const loaderLine = commands.find((c) => /load-secrets$/.test(c));
      assert.is(loaderLine !== undefined, loader, commands.join("\n"));
      if (loader) {
        const at = (c: RegExp) => commands.findIndex((l) => c.test(l));
        assert.ok(at(/load-secrets$/) > at(/^tar /), "after the copy");
        assert.ok(
          at(/load-secrets$/) < at(/connection up/),
          "before the tunnel",
        );
      }

      // A host root: `/` and `/etc` 0755, NetworkManager's connection directory 0700.
      const root = path.join(dir, "root");
      fs.mkdirSync(
        path.join(root, "etc", "NetworkManager", "system-connections"),
        {
          recursive: true,
        },
      );
      fs.chmodSync(root, 0o755);
      fs.chmodSync(path.join(root, "etc"), 0o755);
      fs.chmodSync(path.join(root, "etc", "NetworkManager"), 0o755);
      fs.chmodSync(
        path.join(root, "etc", "NetworkManager", "system-connections"),
        0o700,
      );
      const copy = commands
        .filter((c) => /^(find|tar) /.test(c))
        .map((c) =>
          c.replace(/sudo /g, "").replace(/ -C \/ /, ` -C '${root}' `),
        );
      assert.is(copy.length, 2, commands.join("\n"));
      const run = spawnSync(
        "bash",
        ["-euo", "pipefail", "-c", copy.join("\n")],
        {
          cwd: labDir,
          encoding: "utf8",
        },
      );
      assert.is(run.status, 0, run.stderr);

      assert.is(mode(root), "755");
      assert.is(mode(path.join(root, "etc")), "755");
      assert.is(
        mode(path.join(root, "etc", "NetworkManager", "system-connections")),
        "700",
      );
      const connections = fs.readdirSync(
        path.join(root, "etc", "NetworkManager", "system-connections"),
      );
      assert.ok(connections.length >= 2, connections.join(" "));
      for (const c of connections)
        assert.is(
          mode(
            path.join(root, "etc", "NetworkManager", "system-connections", c),
          ),
          "600",
          c,
        );
      for (const d of [
        "etc/systemd",
        "etc/systemd/resolved.conf.d",
        "etc/NetworkManager/dispatcher.d",
      ])
        assert.is(mode(path.join(root, d)), "755", d);
      for (const s of fs.readdirSync(
        path.join(root, "etc", "NetworkManager", "dispatcher.d"),
      ))
        assert.is(
          mode(path.join(root, "etc", "NetworkManager", "dispatcher.d", s)),
          "755",
          s,
        );
    } finally {
      process.umask(umask);
      cleanup();
    }
  });
}

test.run();
