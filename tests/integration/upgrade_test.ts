/**
 * `emu upgrade` through the real CLI against a real HTTP server on 127.0.0.1 serving a
 * release manifest, real tar.gz archives, a real SHA256SUMS and a real openssl signature.
 * The binary being replaced (EMU_UPGRADE_EXECUTABLE) and the "emu" in the archives are
 * small shell scripts that print a version: `deno compile` cannot run here, and the
 * updater treats them exactly as it would the real binary.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { ecKeyPair, signFile } from "../_helpers/openssl.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";
import { VERSION } from "../../src/version.ts";
import { targetTriple } from "../../src/update/target.ts";

const TARGET = targetTriple(Deno.build.os, Deno.build.arch)!;
const ARCHIVE = `emu-${TARGET}.tar.gz`;

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

interface Env {
  dir: string;
  server: TestServer;
  exe: string;
  emu(args: string[], env?: Record<string, string>): ReturnType<typeof spawnEmu>;
  /** Serves the manifest with this latest release, signed (or not) by the release key. */
  manifest(latest: string, options?: { sign?: boolean }): Promise<void>;
}

/**
 * Releases: 9.0.0 works; 9.1.0's binary fails `--version`; 9.2.0 holds a binary that
 * says it is 9.0.0 (an old release relabelled).
 */
async function withReleases(fn: (e: Env) => Promise<void>) {
  if (!await requireTool("openssl", "openssl", ["version"])) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-upgrade-" });
  const server = startServer();
  try {
    const release = await ecKeyPair(dir, "release");
    await ecKeyPair(dir, "other");
    const releases: Record<string, unknown>[] = [];
    for (
      const [version, script] of [
        ["9.0.0", 'echo "9.0.0"'],
        ["9.1.0", 'echo "Illegal instruction" >&2; exit 132'],
        ["9.2.0", 'echo "9.0.0"'],
      ]
    ) {
      const stage = join(dir, version);
      await Deno.mkdir(stage);
      await Deno.writeTextFile(join(stage, "emu"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
      await run("tar", ["-czf", ARCHIVE, "emu"], stage);
      await run("sh", ["-c", `sha256sum ${ARCHIVE} > SHA256SUMS`], stage);
      await signFile(release.key, join(stage, "SHA256SUMS"), join(stage, "SHA256SUMS.sig"));
      for (const f of [ARCHIVE, "SHA256SUMS", "SHA256SUMS.sig"]) {
        server.file(`/v${version}/${f}`, await Deno.readFile(join(stage, f)));
      }
      releases.push({
        version,
        released_at: "2026-11-01T00:00:00Z",
        sha256sums_url: `${server.url}/v${version}/SHA256SUMS`,
        sha256sums_sig_url: `${server.url}/v${version}/SHA256SUMS.sig`,
        artifacts: { [`emu-${TARGET}`]: `${server.url}/v${version}/${ARCHIVE}` },
      });
    }
    // This emu's own version is listed too (its files are never fetched).
    releases.unshift({ ...releases[0], version: VERSION });
    const manifest = async (latest: string, options: { sign?: boolean } = {}) => {
      const text = JSON.stringify({ schema_version: 1, latest_stable: latest, releases });
      const file = join(dir, "manifest.json");
      await Deno.writeTextFile(file, text);
      server.file("/manifest.json", new TextEncoder().encode(text));
      if (options.sign === false) {
        server.file("/manifest.json.sig", new Uint8Array());
        return;
      }
      await signFile(release.key, file, `${file}.sig`);
      server.file("/manifest.json.sig", await Deno.readFile(`${file}.sig`));
    };
    await manifest("9.0.0");
    const exe = join(dir, "bin", "emu");
    await Deno.mkdir(join(dir, "bin"));
    await Deno.writeTextFile(exe, `#!/bin/sh\necho "${VERSION}"\n`, { mode: 0o755 });
    await fn({
      dir,
      server,
      exe,
      manifest,
      emu: (args, env = {}) =>
        spawnEmu(["upgrade", ...args], {
          env: {
            EMU_HOME: join(dir, "home"),
            EMU_RELEASE_MANIFEST: `${server.url}/manifest.json`,
            EMU_RELEASE_PUBLIC_KEY: join(dir, "release.pub.pem"),
            EMU_UPGRADE_EXECUTABLE: exe,
            ...env,
          },
        }),
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function binDir(e: Env): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(join(e.dir, "bin")))).map((x) => x.name).sort();
}

Deno.test(
  "upgrade: --check says whether a release is newer (exit 10 / 0)",
  needs(TOOLS.openssl),
  () =>
    withReleases(async (e) => {
      await e.manifest(VERSION);
      const upToDate = await e.emu(["--check"]);
      assert.equal(upToDate.code, 0, upToDate.stderr);
      assert.equal(upToDate.stdout, `emu ${VERSION} is up to date (latest release: ${VERSION})\n`);
      const plain = await e.emu([]);
      assert.equal(plain.code, 0);
      assert.deepEqual(await binDir(e), ["emu"]);
      await e.manifest("9.0.0");
      const available = await e.emu(["--check"]);
      assert.equal(available.code, 10, available.stderr);
      assert.equal(
        available.stdout,
        `emu 9.0.0 is available (this is ${VERSION}); run \`emu upgrade\`\n`,
      );
      assert.deepEqual(await binDir(e), ["emu"], "--check changes nothing");
    }),
);

Deno.test(
  "upgrade: an unsigned manifest, a relabelled binary and a rolled-back latest are refused",
  needs(TOOLS.openssl),
  () =>
    withReleases(async (e) => {
      const before = await Deno.readFile(e.exe);
      await e.manifest("9.0.0", { sign: false });
      const unsigned = await e.emu([]);
      assert.equal(unsigned.code, 1);
      assert.match(
        unsigned.stderr,
        /^error\[signature_invalid\]: Cannot read the signature: it is not a DER ECDSA P-256 signature/,
      );

      // The signed manifest says 9.2.0; the binary inside says 9.0.0 ("accepted 0.0.9 as 9").
      await e.manifest("9.0.0");
      const relabelled = await e.emu(["--to", "9.2.0"]);
      assert.equal(relabelled.code, 1);
      assert.match(
        relabelled.stderr,
        new RegExp(
          `\\nerror\\[upgrade_refused\\]: Cannot upgrade to 9\\.2\\.0: the new binary says it is "9\\.0\\.0"; emu ${
            VERSION.replaceAll(".", "\\.")
          } is kept\\n`,
        ),
      );

      // 9.0.0 was seen as the latest; a manifest going back to an older latest is refused.
      await e.manifest(VERSION);
      const back = await e.emu(["--check"]);
      assert.equal(back.code, 1);
      assert.match(
        back.stderr,
        new RegExp(
          `^error\\[rollback_refused\\]: Cannot use ${
            VERSION.replaceAll(".", "\\.")
          } as the latest release of .*: emu has already seen 9\\.0\\.0 there.*\\nhint: .*--to ${
            VERSION.replaceAll(".", "\\.")
          }\\.\\n$`,
        ),
      );
      assert.deepEqual(await Deno.readFile(e.exe), before);
      assert.deepEqual(await binDir(e), ["emu"]);
    }),
);

Deno.test(
  "upgrade: verified swap keeps .previous; --dry-run changes nothing",
  needs(TOOLS.openssl),
  () =>
    withReleases(async (e) => {
      const before = await Deno.readFile(e.exe);
      const dry = await e.emu(["--dry-run"]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.equal(dry.stdout, "dry run: emu 9.0.0 downloaded and verified; nothing was changed\n");
      assert.deepEqual(await Deno.readFile(e.exe), before);
      assert.deepEqual(await binDir(e), ["emu"], "no .next, .previous or work directory");

      const up = await e.emu([]);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stdout, `upgraded ${e.exe} from ${VERSION} to 9.0.0\n`);
      assert.match(up.stderr, /downloading emu 9\.0\.0 \(emu-\S+\.tar\.gz\)\n/);
      assert.match(up.stderr, /the previous binary is kept as \S+\/bin\/emu\.previous\n/);
      assert.equal(await run(e.exe, ["--version"]), "9.0.0\n");
      assert.deepEqual(await Deno.readFile(`${e.exe}.previous`), before);
      assert.deepEqual(await binDir(e), ["emu", "emu.previous"]);
    }),
);

Deno.test(
  "upgrade: a new binary that fails --version is not installed; the old one stays",
  needs(TOOLS.openssl),
  () =>
    withReleases(async (e) => {
      const before = await Deno.readFile(e.exe);
      const r = await e.emu(["--to", "9.1.0"]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `error\\[download_failed\\]: Cannot upgrade to 9\\.1\\.0: the new binary does not run \\(\`--version\`: Illegal instruction\\); emu ${
            VERSION.replaceAll(".", "\\.")
          } is kept\\n`,
        ),
      );
      assert.deepEqual(await Deno.readFile(e.exe), before);
      assert.deepEqual(await binDir(e), ["emu"]);
    }),
);

Deno.test(
  "upgrade: unknown --to, wrong key, Homebrew and deno run are refused (--check is not); nothing changes",
  needs(TOOLS.openssl),
  () =>
    withReleases(async (e) => {
      const before = await Deno.readFile(e.exe);
      const unknown = await e.emu(["--to", "v9.9.9"]);
      assert.equal(unknown.code, 1);
      assert.equal(
        unknown.stderr,
        `error[release_not_found]: Cannot find release v9.9.9: the manifest has ${VERSION}, 9.0.0, 9.1.0, 9.2.0\n` +
          "hint: Pick one of those with --to, or leave it out for the latest stable release.\n",
      );
      const wrongKey = await e.emu([], { EMU_RELEASE_PUBLIC_KEY: join(e.dir, "other.pub.pem") });
      assert.equal(wrongKey.code, 1);
      assert.match(wrongKey.stderr, /^error\[signature_invalid\]: /);

      const cellar = join(e.dir, "Cellar", "emu", "1.0.0", "bin");
      await Deno.mkdir(cellar, { recursive: true });
      await Deno.copyFile(e.exe, join(cellar, "emu"));
      const brew = await e.emu([], { EMU_UPGRADE_EXECUTABLE: join(cellar, "emu") });
      assert.equal(brew.code, 1);
      assert.match(brew.stderr, /Homebrew installed it\nhint: Run `brew upgrade emu`\.\n$/);

      const denoRun = await e.emu([], { EMU_UPGRADE_EXECUTABLE: "" });
      assert.equal(denoRun.code, 1);
      assert.match(
        denoRun.stderr,
        /^error\[upgrade_refused\]: Cannot upgrade: this emu runs under `deno run`, not as a compiled binary\n/,
      );
      // Checking replaces nothing, so Homebrew and `deno run` emus may check.
      for (const exe of ["", join(cellar, "emu")]) {
        const check = await e.emu(["--check"], { EMU_UPGRADE_EXECUTABLE: exe });
        assert.equal(check.code, 10, check.stderr);
        assert.match(check.stdout, /^emu 9\.0\.0 is available \(this is /);
      }

      const unconfigured = await e.emu([], { EMU_RELEASE_MANIFEST: "" });
      assert.equal(unconfigured.code, 1);
      assert.match(
        unconfigured.stderr,
        /does not know where its releases are\nhint: Set EMU_RELEASE_MANIFEST/,
      );
      assert.deepEqual(await Deno.readFile(e.exe), before);
      assert.deepEqual(await binDir(e), ["emu"]);
    }),
);
