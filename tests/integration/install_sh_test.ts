/**
 * install.sh (SPEC §10) in real POSIX shells against a release directory served by a real
 * HTTP server on 127.0.0.1: real tar.gz archives, a real SHA256SUMS and a real openssl
 * ECDSA P-256 signature. The "emu" inside the archives is a small shell script that
 * prints a version (the real binary comes from `deno compile` in the release workflow,
 * which cannot run here); install.sh treats it exactly like the real one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { ecKeyPair, signFile } from "../_helpers/openssl.ts";
import { requireTool } from "../_helpers/require.ts";

const INSTALL_SH = new URL("../../install.sh", import.meta.url).pathname;
const TARGET = Deno.build.arch === "aarch64"
  ? "aarch64-unknown-linux-gnu"
  : "x86_64-unknown-linux-gnu";
const ARCHIVE = `emu-${TARGET}.tar.gz`;

async function run(cmd: string, args: string[], cwd?: string): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

interface Release {
  dir: string;
  server: TestServer;
  key: string;
  otherKey: string;
  /** Serves a release whose emu prints `emu <version>`. */
  publish(version: string, tamper?: "archive" | "sums"): Promise<void>;
  install(env?: Record<string, string>, args?: string[], shell?: string): Promise<{
    code: number;
    stderr: string;
  }>;
  prefix: string;
}

async function withRelease(fn: (r: Release) => Promise<void>) {
  for (
    const [tool, pkg, args] of [["openssl", "openssl", ["version"]], ["dash", "dash", [
      "-c",
      "true",
    ]]] as const
  ) {
    if (!await requireTool(tool, pkg, [...args])) return;
  }
  const dir = await Deno.makeTempDir({ prefix: "emu-install-" });
  const server = startServer();
  try {
    const release = await ecKeyPair(dir, "release");
    const other = await ecKeyPair(dir, "other");
    const prefix = join(dir, "prefix");
    const r: Release = {
      dir,
      server,
      prefix,
      key: release.pub,
      otherKey: other.pub,
      async publish(version, tamper) {
        const stage = join(dir, `stage-${version}`);
        await Deno.mkdir(stage, { recursive: true });
        await Deno.writeTextFile(join(stage, "emu"), `#!/bin/sh\necho "emu ${version}"\n`, {
          mode: 0o755,
        });
        await run("tar", ["-czf", join(dir, ARCHIVE), "-C", stage, "emu"]);
        const archive = await Deno.readFile(join(dir, ARCHIVE));
        await Deno.writeFile(join(dir, "other.tar.gz"), archive);
        await run("sh", ["-c", `sha256sum ${ARCHIVE} other.tar.gz > SHA256SUMS`], dir);
        await signFile(release.key, join(dir, "SHA256SUMS"), join(dir, "SHA256SUMS.sig"));
        let sums = await Deno.readFile(join(dir, "SHA256SUMS"));
        let served = archive;
        if (tamper === "archive") {
          served = archive.slice();
          served[served.length - 10] ^= 0xff;
        }
        if (tamper === "sums") {
          // A consistent but unsigned SHA256SUMS for a different archive.
          const text = new TextDecoder().decode(sums).replace(/^[0-9a-f]{64}/, "0".repeat(64));
          sums = new TextEncoder().encode(text);
        }
        server.file(`/r/${ARCHIVE}`, served);
        server.file("/r/SHA256SUMS", sums);
        server.file("/r/SHA256SUMS.sig", await Deno.readFile(join(dir, "SHA256SUMS.sig")));
      },
      async install(env = {}, args = [], shell = "dash") {
        const out = await new Deno.Command(shell, {
          args: [INSTALL_SH, ...args],
          env: {
            PATH: "/usr/bin:/bin",
            HOME: join(dir, "home"),
            SHELL: "/bin/bash",
            EMU_INSTALL: prefix,
            EMU_INSTALL_BASE_URL: `${server.url}/r`,
            EMU_INSTALL_PUBLIC_KEY: join(dir, "release.pub.pem"),
            ...env,
          },
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output();
        return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
      },
    };
    await fn(r);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function installed(prefix: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(join(prefix, "bin"))).catch(() => []))
    .map((e) => e.name).sort();
}

Deno.test("install.sh: passes shellcheck", async () => {
  if (!await requireTool("shellcheck", "shellcheck")) return;
  const out = await new Deno.Command("shellcheck", { args: ["-s", "sh", INSTALL_SH] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stdout));
});

Deno.test("install.sh: verifies, installs atomically, runs; a second run changes nothing", () =>
  withRelease(async (r) => {
    await r.publish("1.4.0");
    const first = await r.install();
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stderr,
      new RegExp(`downloading emu for ${TARGET} from http://127\\.0\\.0\\.1:\\d+/r\\n`),
    );
    assert.match(first.stderr, /SHA256SUMS signature verified\n/);
    assert.match(first.stderr, /installed emu 1\.4\.0 to \S+\/prefix\/bin\/emu\n/);
    assert.match(
      first.stderr,
      /\S+\/prefix\/bin is not on your PATH; add it with:\n {2}echo 'export PATH="\S+\/prefix\/bin:\$PATH"' >> ~\/\.bashrc\n/,
    );
    assert.deepEqual(await installed(r.prefix), ["emu"], "no temp file left beside it");
    const ran = new TextDecoder().decode(await run(join(r.prefix, "bin", "emu"), ["--version"]));
    assert.equal(ran, "emu 1.4.0\n");
    const before = await Deno.stat(join(r.prefix, "bin", "emu"));

    const second = await r.install({}, [], "bash");
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /emu is already installed and up to date: \S+\/prefix\/bin\/emu\n/);
    assert.doesNotMatch(second.stderr, /installed emu/);
    const after = await Deno.stat(join(r.prefix, "bin", "emu"));
    assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
    assert.equal(after.ino, before.ino, "the file was not replaced");

    // A new release replaces it.
    await r.publish("1.5.0");
    const upgrade = await r.install();
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.equal(
      new TextDecoder().decode(await run(join(r.prefix, "bin", "emu"), ["--version"])),
      "emu 1.5.0\n",
    );
  }));

Deno.test("install.sh: tampered archive, tampered SHA256SUMS, wrong key → refused, nothing installed", () =>
  withRelease(async (r) => {
    const cases: [() => Promise<void>, Record<string, string>, RegExp][] = [
      [
        () => r.publish("1.4.0", "archive"),
        {},
        new RegExp(
          `error: ${
            ARCHIVE.replaceAll(".", "\\.")
          } has sha256 [0-9a-f]{64}, SHA256SUMS says [0-9a-f]{64}; nothing was installed\\nhint: The download was damaged or tampered with\\.`,
        ),
      ],
      [
        () => r.publish("1.4.0", "sums"),
        {},
        /error: the signature of SHA256SUMS does not verify with the release key; nothing was installed\n/,
      ],
      [
        () => r.publish("1.4.0"),
        { EMU_INSTALL_PUBLIC_KEY: r.otherKey },
        /error: the signature of SHA256SUMS does not verify with the release key; nothing was installed\n/,
      ],
    ];
    for (const [publish, env, message] of cases) {
      await publish();
      const out = await r.install(env);
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, message);
      assert.deepEqual(await installed(r.prefix), [], "nothing installed");
    }
  }));

Deno.test("install.sh: --help, unknown options, and a copy that does not know its releases", () =>
  withRelease(async (r) => {
    const help = await new Deno.Command("dash", { args: [INSTALL_SH, "--help"], stdout: "piped" })
      .output();
    assert.equal(help.code, 0);
    assert.match(
      new TextDecoder().decode(help.stdout),
      /^Install emu, one executable, into \$\{EMU_INSTALL:-~\/\.emu\}\/bin\.\n\nusage: install\.sh/,
    );
    const bad = await r.install({}, ["--frobnicate"]);
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr,
      "error: unknown option: --frobnicate\nhint: Run sh install.sh --help.\n",
    );
    const nowhere = await r.install({ EMU_INSTALL_BASE_URL: "" });
    assert.equal(nowhere.code, 1);
    assert.match(
      nowhere.stderr,
      /^error: this copy of install\.sh does not know where releases are\n/,
    );
    assert.deepEqual(await installed(r.prefix), []);
  }));
