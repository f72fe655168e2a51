/**
 * A runner's first boot, for real where it can be (issue 20): in a mount namespace whose /etc,
 * /usr/local and /var/lib are overlays on scratch directories, the real cloud-init writes the
 * runner's user data, then its runcmd runs the generated boot script. The real AWS CLI (Debian's
 * awscli) fetches the credentials and the runner token from an SSM stand-in on loopback. What
 * no namespace can hold (NetworkManager, systemd, the package manager, gitlab-runner itself)
 * is a stub that records its calls. A second boot must change nothing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { load } from "js-yaml";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { generate, parseLab, type LabModel } from "../src/index.js";
import { paths } from "../src/render/paths.js";
import { ROOT, skipped } from "./helpers.js";
import { parseKeyfile } from "./support/consumers.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const AWS = "/usr/bin/aws";
const TOKEN = "glrt-Stand_In-token.0123456789";
/** Bytes a PSK may hold that a careless copy loses: a leading tab, spaces at both ends, a backslash. */
const PSK = "\t psk\\with  spaces\tand a tab \r";
const WG_KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root for mount namespaces";
  if (!fs.existsSync(AWS)) return `needs Debian's awscli (${AWS})`;
  if (spawnSync("cloud-init", ["--version"]).status !== 0)
    return "needs cloud-init";
  if (spawnSync("unshare", ["-m", "true"]).status !== 0)
    return "cannot make a mount namespace";
  return undefined;
}

/** Commands the boot may call that a namespace cannot run: each records its arguments. */
const STUBS: Record<string, string> = {
  nmcli: `echo "nmcli $*" >>"$STUB_LOG"
case "$*" in *GENERAL.STATE*) [ -f "$STUB_STATE/up-$5" ] && echo activated ;; "connection up "*) touch "$STUB_STATE/up-$3" ;; esac
exit 0`,
  systemctl: `echo "systemctl $*" >>"$STUB_LOG"
case "$1" in is-active) [ -f "$STUB_STATE/active" ];; restart) touch "$STUB_STATE/active";; *) exit 0;; esac`,
  sysctl: `echo "sysctl $*" >>"$STUB_LOG"`,
  "gitlab-runner": `echo "gitlab-runner $*" >>"$STUB_LOG"
case "$*" in --version) echo "Version:      $RUNNER_VERSION";; *install*) mkdir -p "$FLEETING_PLUGIN_PATH/aws" && touch "$FLEETING_PLUGIN_PATH/aws/plugin";; esac`,
  "docker-machine": `echo "docker-machine $*" >>"$STUB_LOG"; echo "docker-machine version $DOCKER_MACHINE_VERSION, build 1"`,
  dnf: `echo "dnf $*" >>"$STUB_LOG"; exit 1`,
  "apt-get": `echo "apt-get $*" >>"$STUB_LOG"; exit 1`,
  curl: `echo "curl $*" >>"$STUB_LOG"; exit 1`,
  logger: `exit 0`,
};

/** The secret file a credential field stands for. */
function secretOf(field: string): string {
  if (field === "psk_file") return `${PSK}\n`;
  if (field === "private_key_file") return `${WG_KEY}\n`;
  return `-----BEGIN ${field} for the test-----\n\tline with a tab \\ and spaces  \n-----END-----\n`;
}

function labsToBoot(): { name: string; lab: LabModel }[] {
  const foo = fs.readFileSync(path.join(ROOT, "labs/foo.yaml"), "utf8");
  return [
    ...fs
      .readdirSync(path.join(ROOT, "test/fixtures"))
      .filter((f) => f.endsWith(".yaml"))
      .sort()
      .map((f) => ({
        name: f.replace(/\.yaml$/, ""),
        lab: parseLab(
          fs.readFileSync(path.join(ROOT, "test/fixtures", f), "utf8"),
          f,
        ),
      })),
    {
      name: "docker+machine",
      lab: parseLab(
        foo.replace(
          /\npipeline:/,
          "\nworkers:\n  executor: docker+machine\n\npipeline:",
        ),
        "foo.yaml",
      ),
    },
  ];
}

/** Every file below the overlays' upper directories: path -> mode, bytes and mtime. */
function snapshot(scratch: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, `${rel}/${e.name}`);
      else {
        const st = fs.lstatSync(p);
        out.set(
          `${rel}/${e.name}`,
          `${(st.mode & 0o7777).toString(8)} ${st.mtimeMs} ${fs.readFileSync(p).toString("base64")}`,
        );
      }
    }
  };
  for (const [top, mount] of [
    ["etc", "/etc"],
    ["usr_local", "/usr/local"],
    ["var_lib", "/var/lib"],
  ] as const)
    walk(path.join(scratch, top, "upper"), mount);
  return out;
}

/** GLib's key-file unescaping of a value: what NetworkManager reads. */
function glibValue(raw: string): string {
  return raw.replace(
    /\\(.)/g,
    (_, c: string) =>
      ({ s: " ", t: "\t", r: "\r", n: "\n", "\\": "\\" })[c] ?? c,
  );
}

for (const { name, lab } of labsToBoot()) {
  test(`${name}: a first boot in a scratch root writes every file with its mode, the credentials (0600) and config.toml with the token; a second boot changes nothing`, async () => {
    const why = cannotRun();
    if (why) return skipped(why);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gen-lab-boot-"));
    let ssm: ChildProcess | undefined;
    try {
      const files = generate(lab);
      for (const runner of lab.runners) {
        const scratch = path.join(dir, runner.name);
        const stubs = path.join(scratch, "stubs");
        const state = path.join(scratch, "state");
        for (const d of [stubs, state]) fs.mkdirSync(d, { recursive: true });
        for (const top of ["etc", "usr_local", "var_lib"])
          for (const d of ["upper", "work"])
            fs.mkdirSync(path.join(scratch, top, d), { recursive: true });
        for (const [cmd, body] of Object.entries(STUBS))
          fs.writeFileSync(path.join(stubs, cmd), `#!/bin/sh\n${body}\n`, {
            mode: 0o755,
          });
        const userData = files.find(
          (f) => f.path === paths.runnerUserData(lab, runner),
        )!;
        const userDataFile = path.join(scratch, "user-data.yaml");
        fs.writeFileSync(userDataFile, userData.contents);
        const config = load(userData.contents) as {
          write_files: Json[];
          runcmd: string[][];
        };

        // The SSM stand-in, with this runner's parameters.
        const parameters: Record<string, string> = {
          [runner.names.tokenParameter]: TOKEN,
        };
        for (const c of runner.credentials)
          parameters[c.parameter] = Buffer.from(secretOf(c.field)).toString(
            "base64",
          );
        if (lab.workers.executor === "docker+machine")
          parameters[runner.names.subnetParameter] = "subnet-0123456789abcdef0";
        const store = path.join(scratch, "parameters.json");
        fs.writeFileSync(store, JSON.stringify(parameters));
        ssm = spawn(
          process.execPath,
          [path.join(ROOT, "test/support/ssm-stand-in.mjs"), store],
          { stdio: ["ignore", "pipe", "inherit"] },
        );
        const port = await new Promise<string>((resolve) =>
          ssm!.stdout!.once("data", (d: Buffer) =>
            resolve(d.toString().trim()),
          ),
        );

        const boot = (first: boolean, then = `/${paths.bootScript(lab)}`) => {
          const mounts = [
            ["etc", "/etc"],
            ["usr_local", "/usr/local"],
            ["var_lib", "/var/lib"],
          ]
            .map(
              ([top, at]) =>
                `mount -t overlay overlay -o lowerdir=${at},upperdir=${scratch}/${top}/upper,workdir=${scratch}/${top}/work ${at}`,
            )
            .join("\n");
          const runcmd = config.runcmd
            .map((argv) => argv.map((a) => `'${a}'`).join(" "))
            .join("\n");
          const script = `set -e
mount --make-rprivate /
${mounts}
${first ? `cloud-init --file ${userDataFile} single --name write_files --frequency always >/dev/null` : ""}
${first ? runcmd : then}
`;
          return spawnSync("unshare", ["-m", "bash", "-c", script], {
            encoding: "utf8",
            timeout: 120_000,
            env: {
              PATH: `${stubs}:/usr/sbin:/usr/bin:/sbin:/bin`,
              STUB_LOG: path.join(scratch, "calls.log"),
              STUB_STATE: state,
              RUNNER_VERSION: lab.workers.gitlabRunnerVersion,
              DOCKER_MACHINE_VERSION: "0.16.2-gitlab.48",
              AWS_ENDPOINT_URL_SSM: `http://127.0.0.1:${port}`,
              AWS_ACCESS_KEY_ID: "AKIASTANDIN",
              AWS_SECRET_ACCESS_KEY: "stand-in",
              AWS_EC2_METADATA_DISABLED: "true",
              HOME: scratch,
            },
          });
        };

        const first = boot(true);
        assert.is(
          first.status,
          0,
          `first boot of ${runner.name}:\n${first.stdout}${first.stderr}`,
        );
        assert.match(first.stderr, /runner .* is up/);
        assert.match(first.stderr, /the tunnel's credentials are in place/);
        assert.match(
          fs.readFileSync(path.join(scratch, "calls.log"), "utf8"),
          new RegExp(
            `^systemctl enable --now gen-lab-${lab.name}-tunnel\\.service$`,
            "m",
          ),
          "the boot hands the tunnel to its keeper",
        );
        const tree = snapshot(scratch);
        const at = (p: string) => tree.get(p)?.split(" ");
        for (const f of config.write_files) {
          const [mode, , bytes] = at(f.path) ?? [];
          assert.is(
            mode,
            f.permissions.replace(/^0/, ""),
            `${f.path} has mode ${f.permissions}`,
          );
          const content = Buffer.from(bytes!, "base64").toString();
          // A WireGuard or IPsec keyfile gets its secret from the loader; every other file is as written.
          if (
            /-vpn\.nmconnection$/.test(f.path) &&
            runner.credentials.some((c) =>
              ["psk_file", "private_key_file"].includes(c.field),
            )
          ) {
            const kf = parseKeyfile(content);
            const secret =
              runner.tunnel.type === "ipsec"
                ? kf.get("vpn-secrets")?.get("pskvalue")
                : kf.get("wireguard")?.get("private-key");
            assert.is(
              glibValue(secret ?? ""),
              runner.tunnel.type === "ipsec" ? PSK : WG_KEY,
              "every byte of the secret reaches the profile",
            );
            const nm = spawnSync(
              "nmcli",
              ["--offline", "connection", "modify"],
              { input: content, encoding: "utf8" },
            );
            assert.is(nm.status, 0, nm.stderr);
            const back = parseKeyfile(nm.stdout);
            assert.is(
              glibValue(
                (runner.tunnel.type === "ipsec"
                  ? back.get("vpn-secrets")?.get("pskvalue")
                  : back.get("wireguard")?.get("private-key")) ?? "",
              ),
              runner.tunnel.type === "ipsec" ? PSK : WG_KEY,
              "NetworkManager reads the same secret",
            );
          } else
            assert.is(
              content,
              f.content,
              `${f.path} holds what the user data says`,
            );
        }
        for (const c of runner.credentials) {
          const [mode, , bytes] = at(c.path) ?? [];
          assert.is(mode, "600", `${c.path} is 0600`);
          assert.is(
            Buffer.from(bytes!, "base64").toString(),
            secretOf(c.field),
            `${c.path} holds the file's bytes`,
          );
        }
        const [mode, , bytes] = at("/etc/gitlab-runner/config.toml") ?? [];
        assert.is(mode, "600");
        const toml = Buffer.from(bytes!, "base64").toString();
        assert.match(
          toml,
          new RegExp(`^token = "${TOKEN.replace(/\./g, "\\.")}"$`, "m"),
        );
        assert.not.match(toml, /@RUNNER_TOKEN@|@WORKER_SUBNET_ID@/);
        const calls = fs.readFileSync(path.join(scratch, "calls.log"), "utf8");
        assert.not.match(
          calls,
          /^(dnf|apt-get|curl) /m,
          "nothing was installed: the stubbed gitlab-runner has the pinned version",
        );
        if (lab.workers.executor === "docker-autoscaler")
          assert.match(
            calls,
            /^gitlab-runner fleeting -c \/etc\/gitlab-runner\/config\.toml install$/m,
          );
        else assert.match(toml, /amazonec2-subnet-id=subnet-0123456789abcdef0/);
        const asked = fs
          .readFileSync(`${store}.log`, "utf8")
          .trim()
          .split("\n")
          .map((l) => (JSON.parse(l) as Json).request.Name as string);
        assert.equal(
          [...new Set(asked)].sort(),
          Object.keys(parameters).sort(),
          "the boot asked SSM for exactly the runner's parameters",
        );

        fs.writeFileSync(path.join(scratch, "calls.log"), "");
        const second = boot(false);
        assert.is(
          second.status,
          0,
          `second boot of ${runner.name}:\n${second.stderr}`,
        );
        assert.equal(
          [...snapshot(scratch)],
          [...tree],
          "a second boot changes no file, mode or mtime",
        );
        assert.not.match(
          fs.readFileSync(path.join(scratch, "calls.log"), "utf8"),
          /fleeting .*install|restart gitlab-runner/,
        );

        // The keeper's `credentials` step: a credential gone (or never there) comes back from
        // SSM, and nothing else is touched.
        const lost = runner.credentials[0]!;
        assert.match(
          lost.path,
          /^\/etc\//,
          "the test removes files under its overlay only",
        );
        fs.writeFileSync(path.join(scratch, "calls.log"), "");
        const again = boot(
          false,
          `rm -f '${lost.path}' && /${paths.bootScript(lab)} credentials`,
        );
        assert.is(again.status, 0, `credentials step:\n${again.stderr}`);
        assert.equal(
          [...snapshot(scratch)].filter(([p]) => p !== lost.path),
          [...tree].filter(([p]) => p !== lost.path),
          "the credentials step changes nothing but the lost credential",
        );
        assert.is(
          snapshot(scratch).get(lost.path)?.split(" ")[2],
          Buffer.from(secretOf(lost.field)).toString("base64"),
        );
        assert.equal(
          fs.readFileSync(path.join(scratch, "calls.log"), "utf8"),
          "",
          "the credentials step starts and stops nothing",
        );
        ssm.kill();
        ssm = undefined;
      }
    } finally {
      ssm?.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
