/**
 * `emu image keygen` and `emu image publish` through the real CLI: the release they
 * write is checked by independent tools (openssl, sha256sum, zstd), pulled back over a
 * real HTTP server on 127.0.0.1 with its boot files, and every published file tampered
 * with once (refused, naming the file, nothing installed). Each bad input of publish and
 * keygen: a clear error and nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { spawnEmu } from "../_helpers/cli.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { ecKeyPair } from "../_helpers/openssl.ts";
import { sha } from "../_helpers/release_server.ts";
import { needs, requireTool, TOOLS, VM_TOOLS } from "../_helpers/require.ts";
import { requireVmTools } from "../_helpers/vm_env.ts";

const NAME = "emu-fast-fixture-amd64";
const FILES = {
  disk: `${NAME}.qcow2.zst`,
  kernel: `${NAME}.vmlinuz`,
  initrd: `${NAME}.initrd`,
  descriptor: `${NAME}.image.json`,
};

async function tool(cmd: string, args: string[], cwd = "/"): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `${cmd} ${args.join(" ")}: ${text}`);
  return text;
}

interface World {
  dir: string;
  fixture: string;
  server: TestServer;
  key: string;
  publicKey: string;
  emu(args: string[], env?: Record<string, string>): ReturnType<typeof spawnEmu>;
  /** Serves every file of `rel` under `/rel/`. */
  serve(rel: string): Promise<void>;
  /**
   * Publishes the fast fixture as release 1.0.0 to `<dir>/rel` for `<server>/rel` and
   * writes a profile naming only its manifest and key; returns the release directory
   * and the profile.
   */
  publishFast(): Promise<{ rel: string; profile: string }>;
}

async function withWorld(fn: (w: World) => Promise<void>) {
  if (!await requireVmTools()) return;
  for (const [t, p] of [["zstd", "zstd"], ["sha256sum", "coreutils"]] as const) {
    if (!await requireTool(t, p)) return;
  }
  if (!await requireTool("openssl", "openssl", ["version"])) return;
  const fixture = (await ensureFastFixture({ log: () => {} })).dir;
  const dir = await Deno.makeTempDir({ prefix: "emu-publish-" });
  const server = startServer();
  try {
    const emu = (args: string[], env: Record<string, string> = {}) =>
      spawnEmu(args, { cwd: dir, env: { EMU_HOME: join(dir, "home"), ...env } });
    const keygen = await emu(["image", "keygen", "--out", "key.pem"]);
    assert.equal(keygen.code, 0, keygen.stderr);
    const publicKey = JSON.parse(keygen.stdout);
    await fn({
      dir,
      fixture,
      server,
      key: join(dir, "key.pem"),
      publicKey,
      emu,
      publishFast: async () => {
        const rel = join(dir, "rel");
        const pub = await emu([
          "image",
          "publish",
          fixture,
          ...["--out", rel, "--key", "key.pem", "--version", "1.0.0"],
          ...["--base-url", `${server.url}/rel`],
        ]);
        assert.equal(pub.code, 0, pub.stderr);
        const profile = join(dir, "emu.json");
        await Deno.writeTextFile(
          profile,
          JSON.stringify({
            name: "fast",
            image: { source: `${server.url}/rel/manifest.json`, public_key: publicKey },
          }),
        );
        return { rel, profile };
      },
      serve: async (rel) => {
        for await (const e of Deno.readDir(rel)) {
          server.file(`/rel/${e.name}`, await Deno.readFile(join(rel, e.name)));
        }
      },
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function listing(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir)).catch(() => [])).map((e) => e.name)
    .filter((n) => !n.startsWith(".")).sort();
}

Deno.test(
  "keygen: a 0600 P-256 key openssl reads, the public key as a JSON string; an existing file is kept",
  needs(TOOLS.openssl, TOOLS.zstd, TOOLS.sha256sum, ...VM_TOOLS),
  () =>
    withWorld(async (w) => {
      assert.equal((Deno.statSync(w.key).mode ?? 0) & 0o777, 0o600);
      assert.match(await tool("openssl", ["pkey", "-in", w.key, "-noout", "-text"]), /prime256v1/);
      assert.match(
        w.publicKey,
        /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/,
      );
      const before = await Deno.readTextFile(w.key);
      const again = await w.emu(["image", "keygen", "--out", "key.pem"]);
      assert.equal(again.code, 2);
      assert.match(again.stderr, /^error\[usage\]: Cannot write .*\/key\.pem: it exists\n/);
      assert.equal(await Deno.readTextFile(w.key), before, "the old key is untouched");
      assert.deepEqual(await listing(w.dir), ["key.pem"], "no temp file left");
      const json = await w.emu(["image", "keygen", "--out", "k2.pem", "--json"]);
      assert.match(JSON.parse(json.stdout).fingerprint, /^[0-9a-f]{64}$/);
    }),
);

Deno.test(
  "publish: a release openssl, sha256sum and zstd agree with; pulled back with its boot files",
  needs(TOOLS.zstd, TOOLS.openssl, TOOLS.sha256sum, ...VM_TOOLS),
  () =>
    withWorld(async (w) => {
      const { rel, profile } = await w.publishFast();
      assert.deepEqual(
        await listing(rel),
        [
          "SHA256SUMS",
          "SHA256SUMS.sig",
          FILES.descriptor,
          FILES.initrd,
          FILES.disk,
          FILES.kernel,
          "manifest.json",
          "manifest.json.sig",
        ].sort(),
      );
      assert.equal((Deno.statSync(join(rel, FILES.disk)).mode ?? 0) & 0o777, 0o644, "servable");
      await Deno.writeTextFile(join(w.dir, "pub.pem"), w.publicKey);
      for (const signed of ["SHA256SUMS", "manifest.json"]) {
        assert.match(
          await tool("openssl", [
            "dgst",
            "-sha256",
            "-verify",
            join(w.dir, "pub.pem"),
            "-signature",
            join(rel, `${signed}.sig`),
            join(rel, signed),
          ]),
          /Verified OK/,
        );
      }
      assert.match(await tool("sha256sum", ["-c", "SHA256SUMS"], rel), /\.qcow2\.zst: OK/);
      const image = JSON.parse(await Deno.readTextFile(join(w.fixture, "image.json")));
      const raw = await new Deno.Command("zstd", {
        args: ["-dc", join(rel, FILES.disk)],
        stdout: "piped",
      })
        .output();
      assert.equal(sha(raw.stdout), image.sha256, "the disk decompresses to the built image");
      const descriptor = JSON.parse(await Deno.readTextFile(join(rel, FILES.descriptor)));
      assert.deepEqual(descriptor, {
        schema_version: 1,
        name: "emu-fast-fixture",
        version: "1.0.0",
        arch: "x86_64",
        disk: { file: FILES.disk, size: image.size, sha256: image.sha256 },
        boot: { kernel: FILES.kernel, initrd: FILES.initrd, append: image.boot.append },
      });

      await w.serve(rel);
      const pull = await w.emu(["--config", profile, "pull", "--skip-snapshot", "--json"]);
      assert.equal(pull.code, 0, pull.stderr);
      const installed = JSON.parse(pull.stdout).image;
      assert.equal(installed.version, "1.0.0");
      assert.equal(installed.sha256, image.sha256);
      assert.deepEqual(
        await Deno.readFile(installed.boot.kernel),
        await Deno.readFile(join(w.fixture, "vmlinuz")),
      );
      assert.deepEqual(
        await Deno.readFile(installed.boot.initrd),
        await Deno.readFile(join(w.fixture, "initrd.cpio")),
      );
      assert.equal(installed.boot.append, image.boot.append);
      assert.deepEqual(await listing(join(w.dir, "home", "downloads")), [], "no part file left");
    }),
);

Deno.test(
  "publish → pull: tampering with any one published file is refused, naming it; nothing installed",
  needs(TOOLS.zstd, TOOLS.openssl, TOOLS.sha256sum, ...VM_TOOLS),
  () =>
    withWorld(async (w) => {
      const { rel, profile } = await w.publishFast();
      const cases: [string, RegExp][] = [
        [
          FILES.disk,
          /^error\[checksum_mismatch\]: Cannot install http:\/\/\S+\/emu-fast-fixture-amd64\.qcow2\.zst: its sha256 is/m,
        ],
        [
          FILES.kernel,
          /^error\[checksum_mismatch\]: Cannot install http:\/\/\S+\/emu-fast-fixture-amd64\.vmlinuz: its sha256 is/m,
        ],
        [
          FILES.initrd,
          /^error\[checksum_mismatch\]: Cannot install http:\/\/\S+\/emu-fast-fixture-amd64\.initrd: its sha256 is/m,
        ],
        [
          FILES.descriptor,
          /^error\[checksum_mismatch\]: Cannot install emu-fast-fixture-amd64\.image\.json: its sha256 is/m,
        ],
        [
          "SHA256SUMS",
          /^error\[signature_invalid\]: Cannot trust SHA256SUMS of release 1\.0\.0: its signature does not verify/m,
        ],
        [
          "manifest.json",
          /^error\[signature_invalid\]: Cannot trust the manifest http:\/\/\S+\/manifest\.json: its signature does not verify/m,
        ],
      ];
      for (const [file, message] of cases) {
        await w.serve(rel);
        const bytes = await Deno.readFile(join(rel, file));
        const bad = bytes.slice();
        bad[Math.floor(bad.length / 2)] ^= 0x20;
        w.server.file(`/rel/${file}`, bad);
        const home = join(w.dir, `home-${file}`);
        const r = await w.emu(["--config", profile, "pull", "--skip-snapshot"], { EMU_HOME: home });
        assert.equal(r.code, 1, `${file}: ${r.stderr}`);
        assert.match(r.stderr, message, file);
        assert.deepEqual(await listing(join(home, "images")), [], `${file}: nothing installed`);
        assert.deepEqual(await listing(join(home, "downloads")), [], `${file}: no part file`);
      }
    }),
);

Deno.test(
  "publish: bad inputs are refused with a clear error; nothing is written",
  needs(TOOLS.openssl, TOOLS.zstd, TOOLS.sha256sum, ...VM_TOOLS),
  () =>
    withWorld(async (w) => {
      const publish = (image: string, extra: string[], env: Record<string, string> = {}) =>
        w.emu(["image", "publish", image, "--out", "out", "--key", "key.pem", ...extra], env);
      const base = ["--base-url", "https://dl.example.com/r", "--version", "1.0.0"];
      const copy = join(w.dir, "copy");
      await Deno.mkdir(copy);
      for (const f of ["image.json", "disk.qcow2", "vmlinuz", "initrd.cpio"]) {
        await Deno.copyFile(join(w.fixture, f), join(copy, f));
      }
      const expect = async (
        r: Awaited<ReturnType<typeof spawnEmu>>,
        code: number,
        message: RegExp,
      ) => {
        assert.equal(r.code, code, r.stderr);
        assert.match(r.stderr, message);
        assert.deepEqual((await listing(w.dir)).filter((n) => n === "out"), [], "no out dir");
        assert.deepEqual(
          (await Array.fromAsync(Deno.readDir(w.dir))).map((e) => e.name).filter((n) =>
            n.includes("publish")
          ),
          [],
          "no work directory left",
        );
      };

      await expect(
        await publish(join(w.dir, "nowhere"), base),
        1,
        /^error\[publish_input\]: Cannot publish .*\/nowhere: it has no image\.json\n/,
      );
      await expect(
        await publish(copy, ["--base-url", "https://dl.example.com/r"]),
        1,
        /^error\[publish_input\]: Cannot publish version "1\.0\.0\+[0-9a-f]+": a release version may not carry build metadata/,
      );
      await expect(
        await publish(copy, ["--version", "1.0.0"]),
        2,
        /^error\[usage\]: Cannot publish without --base-url \(or --github\)\n/,
      );

      // A disk changed after the build: same size, one byte different; then a different size.
      const disk = join(copy, "disk.qcow2");
      const original = await Deno.readFile(disk);
      const flipped = original.slice();
      flipped[original.length - 1] ^= 1;
      await Deno.writeFile(disk, flipped);
      await expect(
        await publish(copy, base),
        1,
        /^error\[publish_input\]: Cannot publish .*\/copy: disk\.qcow2 has sha256 [0-9a-f]{64}, image\.json says [0-9a-f]{64}\n/m,
      );
      await Deno.writeFile(disk, original.subarray(0, original.length - 512));
      await expect(
        await publish(copy, base),
        1,
        /^error\[publish_input\]: Cannot publish .*\/copy: disk\.qcow2 is \d+ bytes, image\.json says \d+\n/,
      );
      await Deno.writeFile(disk, original);

      for (
        const [name, args, what] of [
          ["rsa.pem", ["genpkey", "-algorithm", "RSA", "-out", "rsa.pem"], "a rsa key"],
          ["ed.pem", ["genpkey", "-algorithm", "ed25519", "-out", "ed.pem"], "a ed25519 key"],
          [
            "p384.pem",
            ["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "p384.pem"],
            "an EC key on secp384r1",
          ],
        ] as const
      ) {
        await tool("openssl", [...args], w.dir);
        const r = await w.emu(["image", "publish", copy, "--out", "out", "--key", name, ...base]);
        await expect(
          r,
          1,
          new RegExp(
            `^error\\[signature_invalid\\]: Cannot use .*${name} as a signing key: it is ${what}, and releases are signed with ECDSA P-256\\n`,
          ),
        );
      }
      const noKey = await w.emu(["image", "publish", copy, "--out", "out", ...base]);
      await expect(noKey, 2, /^error\[usage\]: Cannot publish without a signing key\n/);
      // The key may come from the environment (a CI secret); openssl's SEC1 format too.
      const sec1 = await ecKeyPair(w.dir, "sec1");
      const fromEnv = await w.emu(
        ["image", "publish", copy, "--out", "out", ...base, "--json"],
        { EMU_SIGNING_KEY: await Deno.readTextFile(sec1.key) },
      );
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      assert.equal(
        JSON.parse(fromEnv.stdout).public_key,
        await Deno.readTextFile(sec1.pub),
        "signed with the key from EMU_SIGNING_KEY",
      );

      // out/ now holds a release: not replaced without --force, and 1.0.0 is in its manifest.
      const before = await Deno.readTextFile(join(w.dir, "out", "SHA256SUMS"));
      const nonEmpty = await publish(copy, base);
      assert.equal(nonEmpty.code, 1);
      assert.match(
        nonEmpty.stderr,
        /^error\[publish_input\]: Cannot publish into .*\/out: it is not empty\n/,
      );
      await Deno.rename(join(w.dir, "out"), join(w.dir, "prev"));
      const again = await w.emu([
        "image",
        "publish",
        copy,
        "--out",
        "out",
        ...base,
        "--manifest",
        join(w.dir, "prev", "manifest.json"),
        "--key",
        sec1.key,
      ]);
      assert.equal(again.code, 1);
      assert.match(
        again.stderr,
        /^error\[publish_input\]: Cannot publish 1\.0\.0: .*manifest\.json already has release 1\.0\.0\n/,
      );
      // A manifest signed by another key is not carried forward.
      const other = await w.emu([
        "image",
        "publish",
        copy,
        "--out",
        "out",
        "--key",
        "key.pem",
        "--base-url",
        "https://dl.example.com/r",
        "--version",
        "1.1.0",
        "--manifest",
        join(w.dir, "prev", "manifest.json"),
      ]);
      assert.equal(other.code, 1);
      assert.match(
        other.stderr,
        /^error\[signature_invalid\]: Cannot trust the manifest .*prev\/manifest\.json/m,
      );
      assert.equal(await Deno.readTextFile(join(w.dir, "prev", "SHA256SUMS")), before);
    }),
);

Deno.test(
  "publish --manifest: releases carried forward newest first; latest_stable stays for a pre-release",
  needs(TOOLS.zstd, TOOLS.openssl, TOOLS.sha256sum, ...VM_TOOLS),
  () =>
    withWorld(async (w) => {
      const copy = join(w.dir, "copy");
      await Deno.mkdir(copy);
      for (const f of ["image.json", "disk.qcow2", "vmlinuz", "initrd.cpio"]) {
        await Deno.copyFile(join(w.fixture, f), join(copy, f));
      }
      const run = (version: string, out: string, manifest?: string) =>
        w.emu([
          "image",
          "publish",
          copy,
          "--out",
          out,
          "--key",
          "key.pem",
          "--version",
          version,
          "--base-url",
          `https://dl.example.com/${version}`,
          ...(manifest ? ["--manifest", manifest] : []),
        ]);
      assert.equal((await run("1.0.0", "r1")).code, 0);
      assert.equal((await run("1.1.0", "r2", join(w.dir, "r1", "manifest.json"))).code, 0);
      const pre = await run("1.2.0-rc.1", "r3", join(w.dir, "r2", "manifest.json"));
      assert.equal(pre.code, 0, pre.stderr);
      const m = JSON.parse(await Deno.readTextFile(join(w.dir, "r3", "manifest.json")));
      assert.equal(m.latest_stable, "1.1.0");
      assert.deepEqual(m.releases.map((r: { version: string }) => r.version), [
        "1.2.0-rc.1",
        "1.1.0",
        "1.0.0",
      ]);
      assert.equal(m.releases[2].sha256sums_url, "https://dl.example.com/1.0.0/SHA256SUMS");
      // --force replaces a release of the same version, and a non-empty --out.
      const forced = await w.emu([
        "image",
        "publish",
        copy,
        "--out",
        "r3",
        "--key",
        "key.pem",
        "--version",
        "1.1.0",
        "--base-url",
        "https://mirror.example.com/1.1.0",
        "--manifest",
        join(w.dir, "r2", "manifest.json"),
        "--force",
      ]);
      assert.equal(forced.code, 0, forced.stderr);
      const f = JSON.parse(await Deno.readTextFile(join(w.dir, "r3", "manifest.json")));
      assert.deepEqual(f.releases.map((r: { version: string }) => r.version), ["1.1.0", "1.0.0"]);
      assert.equal(f.releases[0].sha256sums_url, "https://mirror.example.com/1.1.0/SHA256SUMS");
    }),
);
