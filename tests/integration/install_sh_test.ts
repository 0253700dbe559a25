/**
 * install.sh (docs/architecture.md, «Distribution and self-update») in real POSIX shells against a
 * release directory served by a real HTTP server on 127.0.0.1: real tar.gz archives, a real
 * SHA256SUMS and a real openssl ECDSA P-256 signature. The "emu" inside the archives is a small
 * shell script that prints a version (the real binary comes from `deno compile` in the release
 * workflow, which cannot run here); install.sh treats it exactly like the real one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { ecKeyPair, signFile } from "../_helpers/openssl.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const INSTALL_SH = new URL("../../install.sh", import.meta.url).pathname;
/** The target install.sh picks on this machine (it runs in the macOS CI job too). */
const TARGET = `${Deno.build.arch}-${
  Deno.build.os === "darwin" ? "apple-darwin" : "unknown-linux-gnu"
}`;
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
  /** Serves a release whose emu prints `<version>` (or `says`), as the real `emu --version`. */
  publish(version: string, tamper?: "archive" | "sums", says?: string): Promise<void>;
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
      async publish(version, tamper, says = version) {
        const stage = join(dir, `stage-${version}`);
        await Deno.mkdir(stage, { recursive: true });
        await Deno.writeTextFile(join(stage, "emu"), `#!/bin/sh\necho "${says}"\n`, {
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

Deno.test("install.sh: passes shellcheck", needs(TOOLS.shellcheck), async () => {
  if (!await requireTool("shellcheck", "shellcheck")) return;
  const out = await new Deno.Command("shellcheck", { args: ["-s", "sh", INSTALL_SH] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stdout));
});

Deno.test(
  "install.sh: verifies, installs atomically, runs; a second run changes nothing",
  needs(TOOLS.openssl, TOOLS.dash),
  () =>
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
      assert.equal(ran, "1.4.0\n");
      const before = await Deno.stat(join(r.prefix, "bin", "emu"));

      const second = await r.install({}, [], "bash");
      assert.equal(second.code, 0, second.stderr);
      assert.match(
        second.stderr,
        /emu is already installed and up to date: \S+\/prefix\/bin\/emu\n/,
      );
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
        "1.5.0\n",
      );
    }),
);

Deno.test(
  "install.sh: tampered archive, tampered SHA256SUMS, wrong key → refused, nothing installed",
  needs(TOOLS.openssl, TOOLS.dash),
  () =>
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
    }),
);

Deno.test(
  "install.sh: --help, unknown options, and a copy that does not know its releases",
  needs(TOOLS.dash, TOOLS.openssl),
  () =>
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
    }),
);

/** A PATH directory with every tool of /usr/bin and /bin except `without`. */
async function pathWithout(dir: string, without: string): Promise<string> {
  const bin = join(dir, `path-without-${without}`);
  await Deno.mkdir(bin);
  for (const from of ["/usr/bin", "/bin"]) {
    for await (const e of Deno.readDir(from)) {
      if (e.name === without) continue;
      await Deno.symlink(join(from, e.name), join(bin, e.name)).catch(() => {});
    }
  }
  return bin;
}

Deno.test(
  "install.sh fails closed: no openssl, no key, plain http → nothing installed",
  needs(TOOLS.openssl, TOOLS.dash),
  () =>
    withRelease(async (r) => {
      await r.publish("1.4.0");
      const withoutOpenssl = await pathWithout(r.dir, "openssl");
      const noOpenssl = await r.install({ PATH: withoutOpenssl });
      assert.equal(noOpenssl.code, 1);
      assert.match(
        noOpenssl.stderr,
        /error: openssl is not installed, so the release signature cannot be checked; nothing was installed\nhint: Install openssl/,
      );
      const noKey = await r.install({ EMU_INSTALL_PUBLIC_KEY: "" });
      assert.equal(noKey.code, 1);
      assert.match(
        noKey.stderr,
        /error: this copy of install\.sh has no release key, so it cannot check the release signature; nothing was installed\n/,
      );
      const http = await r.install({ EMU_INSTALL_BASE_URL: "http://mirror.example.invalid/r" });
      assert.equal(http.code, 1);
      assert.equal(
        http.stderr,
        "error: refusing to download from http://mirror.example.invalid/r: only https (or http to this machine) is accepted\n" +
          "hint: Anyone on the path could replace a plain-http download; use the https URL.\n",
      );
      assert.deepEqual(await installed(r.prefix), []);

      // The user may take that risk by name; the sha256 is still checked.
      const skipped = await r.install({ PATH: withoutOpenssl }, ["--insecure-skip-signature"]);
      assert.equal(skipped.code, 0, skipped.stderr);
      assert.match(
        skipped.stderr,
        /warning: --insecure-skip-signature: the SHA256SUMS signature is NOT checked/,
      );
      assert.deepEqual(await installed(r.prefix), ["emu"]);
    }),
);

Deno.test(
  "install.sh: a binary that is not the version asked for is not installed",
  needs(TOOLS.openssl, TOOLS.dash),
  () =>
    withRelease(async (r) => {
      await r.publish("1.4.0", undefined, "0.0.9");
      const out = await r.install({}, ["--version", "1.4.0"]);
      assert.equal(out.code, 1);
      assert.match(
        out.stderr,
        /error: the downloaded emu says it is 0\.0\.9, not 1\.4\.0; nothing was installed\n/,
      );
      assert.deepEqual(await installed(r.prefix), []);
    }),
);

Deno.test(
  "install.sh: a download cut short (curl | sh) runs nothing",
  needs(TOOLS.dash, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      await r.publish("1.4.0");
      const script = await Deno.readFile(INSTALL_SH);
      for (const fraction of [0.3, 0.6, 0.95]) {
        const cut = script.slice(0, Math.floor(script.length * fraction));
        const child = new Deno.Command("dash", {
          args: ["-s"],
          env: {
            PATH: "/usr/bin:/bin",
            HOME: join(r.dir, "home"),
            EMU_INSTALL: r.prefix,
            EMU_INSTALL_BASE_URL: `${r.server.url}/r`,
            EMU_INSTALL_PUBLIC_KEY: r.key,
          },
          clearEnv: true,
          stdin: "piped",
          stdout: "null",
          stderr: "null",
        }).spawn();
        const writer = child.stdin.getWriter();
        await writer.write(cut);
        await writer.close();
        await child.status;
        assert.equal(r.server.requests.length, 0, `nothing fetched with ${fraction} of the script`);
        assert.deepEqual(await installed(r.prefix), []);
      }
    }),
);
