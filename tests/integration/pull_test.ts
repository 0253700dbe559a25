/**
 * `emu pull` against a real HTTP server on 127.0.0.1 serving a release made with the real
 * tools: a qcow2 from qemu-img, compressed by zstd, SHA256SUMS signed by openssl.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { signFile } from "../_helpers/openssl.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

interface Release {
  server: TestServer;
  dir: string;
  disk: Uint8Array;
  publicKey: string;
  otherKey: string;
  profile(extra?: Record<string, unknown>): Promise<string>;
  /** Serves /manifest.json (with overrides) and its signature by `key.pem`. */
  manifest(overrides?: Record<string, unknown>): Promise<void>;
}

async function withRelease(fn: (r: Release) => Promise<void>) {
  for (
    const [tool, pkg, args] of [["qemu-img", "qemu-utils", ["--version"]], ["zstd", "zstd", [
      "--version",
    ]], ["openssl", "openssl", ["version"]]] as const
  ) {
    if (!await requireTool(tool, pkg, [...args])) return;
  }
  const dir = await Deno.makeTempDir({ prefix: "emu-pull-" });
  const server = startServer();
  try {
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "stack-amd64.qcow2", "32M"], dir);
    await run("zstd", ["-q", "stack-amd64.qcow2", "-o", "stack-amd64.qcow2.zst"], dir);
    const disk = await Deno.readFile(join(dir, "stack-amd64.qcow2"));
    const zst = await Deno.readFile(join(dir, "stack-amd64.qcow2.zst"));
    for (const k of ["key", "other"]) {
      await run("openssl", [
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        `${k}.pem`,
      ], dir);
      await run("openssl", ["ec", "-in", `${k}.pem`, "-pubout", "-out", `${k}.pub`], dir);
    }
    const sums = `${sha(zst)}  stack-amd64.qcow2.zst\n`;
    await Deno.writeTextFile(join(dir, "SHA256SUMS"), sums);
    await signFile(join(dir, "key.pem"), join(dir, "SHA256SUMS"), join(dir, "SHA256SUMS.sig"));
    server.file("/1.4.0/stack-amd64.qcow2.zst", zst);
    server.file("/1.4.0/SHA256SUMS", new TextEncoder().encode(sums));
    server.file("/1.4.0/SHA256SUMS.sig", await Deno.readFile(join(dir, "SHA256SUMS.sig")));
    const release: Release = {
      server,
      dir,
      disk,
      publicKey: await Deno.readTextFile(join(dir, "key.pub")),
      otherKey: await Deno.readTextFile(join(dir, "other.pub")),
      manifest: async (overrides = {}) => {
        const text = JSON.stringify({
          schema_version: 1,
          latest_stable: "1.4.0",
          releases: [{
            version: "1.4.0",
            released_at: "2026-11-01T00:00:00Z",
            sha256sums_url: `${server.url}/1.4.0/SHA256SUMS`,
            sha256sums_sig_url: `${server.url}/1.4.0/SHA256SUMS.sig`,
            artifacts: { "image-amd64": `${server.url}/1.4.0/stack-amd64.qcow2.zst` },
          }],
          ...overrides,
        });
        await Deno.writeTextFile(join(dir, "manifest.json"), text);
        await signFile(
          join(dir, "key.pem"),
          join(dir, "manifest.json"),
          join(dir, "manifest.json.sig"),
        );
        server.file("/manifest.json", new TextEncoder().encode(text));
        server.file("/manifest.json.sig", await Deno.readFile(join(dir, "manifest.json.sig")));
      },
      profile: async (extra = {}) => {
        const path = join(dir, "emu.json");
        await Deno.writeTextFile(
          path,
          JSON.stringify({
            name: "shop",
            image: {
              source: `${server.url}/manifest.json`,
              public_key: release.publicKey,
              ...extra,
            },
          }),
        );
        return path;
      },
    };
    await release.manifest();
    await fn(release);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "pull: verifies the signed SHA256SUMS and the download, installs image.json; a second pull is a no-op",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const profile = await r.profile();
      const first = await spawnEmu(["--config", profile, "pull", "--skip-snapshot", "--json"], {
        env,
      });
      assert.equal(first.code, 0, first.stderr);
      const out = JSON.parse(first.stdout);
      assert.equal(out.cached, false);
      assert.equal(out.image.version, "1.4.0");
      assert.equal(out.image.sha256, sha(r.disk));
      assert.deepEqual(await Deno.readFile(join(out.image.dir, "disk.qcow2")), r.disk);
      const ids = (await Array.fromAsync(Deno.readDir(join(r.dir, "home", "images")))).map((e) =>
        e.name
      );
      assert.equal(ids.length, 1);
      assert.match(ids[0], /^1\.4\.0-image-amd64-[0-9a-f]{12}$/, "version, artifact, origin hash");
      assert.deepEqual(
        await Array.fromAsync(Deno.readDir(join(r.dir, "home", "downloads"))),
        [],
        "no part file left",
      );

      const requests = r.server.requests.length;
      const again = await spawnEmu(["--config", profile, "pull", "--skip-snapshot", "--json"], {
        env,
      });
      assert.equal(again.code, 0);
      assert.equal(JSON.parse(again.stdout).cached, true);
      assert.equal(
        r.server.requests.filter((q) => q.path.endsWith(".zst")).length,
        1,
        "the image is not downloaded twice",
      );
      assert.ok(r.server.requests.length > requests, "the manifest is still read");
    }),
);

Deno.test(
  "pull: a wrong key or a tampered signature installs nothing",
  needs(TOOLS.openssl, TOOLS.qemuImg, TOOLS.zstd),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const wrong = await spawnEmu([
        "--config",
        await r.profile({ public_key: r.otherKey }),
        "pull",
        "--skip-snapshot",
      ], { env });
      assert.equal(wrong.code, 1);
      assert.match(
        wrong.stderr,
        /^error\[signature_invalid\]: Cannot trust the manifest http:\/\/127\.0\.0\.1:\d+\/manifest\.json: its signature does not verify with the configured public key\n/,
      );
      // A signed manifest whose SHA256SUMS is signed by another key.
      await signFile(join(r.dir, "other.pem"), join(r.dir, "SHA256SUMS"), join(r.dir, "other.sig"));
      r.server.file("/1.4.0/SHA256SUMS.sig", await Deno.readFile(join(r.dir, "other.sig")));
      const other = await spawnEmu(["--config", await r.profile(), "pull", "--skip-snapshot"], {
        env,
      });
      assert.equal(other.code, 1);
      assert.match(
        other.stderr,
        /^error\[signature_invalid\]: Cannot trust SHA256SUMS of release 1\.4\.0: its signature does not verify with the configured public key\n/,
      );
      r.server.file("/1.4.0/SHA256SUMS.sig", new Uint8Array([0x30, 0x02, 0x02, 0x00]));
      const bad = await spawnEmu(["--config", await r.profile(), "pull", "--skip-snapshot"], {
        env,
      });
      assert.equal(bad.code, 1);
      assert.match(
        bad.stderr,
        /^error\[signature_invalid\]: Cannot read the signature: it is not a DER ECDSA P-256 signature/,
      );
      const images = await Array.fromAsync(Deno.readDir(join(r.dir, "home", "images"))).catch(
        () => [],
      );
      assert.deepEqual(images, [], "nothing installed");
      assert.equal(
        r.server.requests.filter((q) => q.path.endsWith(".zst")).length,
        0,
        "the image was never downloaded",
      );
    }),
);

Deno.test(
  "pull: schema_version 2, an unknown version and a traversal name are refused clearly",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const profile = await r.profile();
      await r.manifest({ schema_version: 2 });
      const newer = await spawnEmu(["--config", profile, "pull", "--skip-snapshot"], { env });
      assert.equal(newer.code, 1);
      assert.match(
        newer.stderr,
        /^error\[emu_too_old\]: .*schema_version 2, this emu understands 1\nhint: Upgrade emu/,
      );
      await r.manifest();
      const unknown = await spawnEmu([
        "--config",
        profile,
        "pull",
        "--skip-snapshot",
        "--version",
        "9.9.9",
      ], { env });
      assert.equal(unknown.code, 1);
      assert.match(
        unknown.stderr,
        /^error\[release_not_found\]: Cannot find release 9\.9\.9: the manifest has 1\.4\.0\n/,
      );
      await r.manifest({
        releases: [{
          version: "1.4.0",
          released_at: "",
          sha256sums_url: `${r.server.url}/s`,
          sha256sums_sig_url: `${r.server.url}/s.sig`,
          artifacts: { "../image-amd64": `${r.server.url}/x` },
        }],
      });
      const traversal = await spawnEmu(["--config", profile, "pull", "--skip-snapshot"], { env });
      assert.equal(traversal.code, 1);
      assert.match(
        traversal.stderr,
        /^error\[manifest_invalid\]: .*not a plain name: "\.\.\/image-amd64"/,
      );
      const noKey = await spawnEmu([
        "--config",
        await r.profile({ public_key: undefined }),
        "pull",
        "--skip-snapshot",
      ], { env });
      assert.equal(noKey.code, 1);
      assert.match(
        noKey.stderr,
        /^error\[signature_invalid\]: Cannot verify releases: no public key is configured/,
      );
    }),
);

Deno.test(
  "list-releases: the manifest's releases, latest and installed marked; --json",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const profile = await r.profile();
      const before = await spawnEmu(["--config", profile, "list-releases"], { env });
      assert.equal(before.code, 0, before.stderr);
      assert.equal(
        before.stdout,
        "VERSION     RELEASED              ARTIFACTS\n1.4.0       2026-11-01T00:00:00Z  image-amd64  (latest)\n",
      );
      assert.equal(
        (await spawnEmu(["--config", profile, "pull", "--skip-snapshot"], { env })).code,
        0,
      );
      const after = await spawnEmu(["--config", profile, "list-releases", "--json"], { env });
      assert.deepEqual(JSON.parse(after.stdout).releases, [{
        version: "1.4.0",
        released_at: "2026-11-01T00:00:00Z",
        latest: true,
        artifacts: ["image-amd64"],
        installed: true,
      }]);
    }),
);

/** Pulls the release with `profile` and returns the image's cache id. */
async function pulledId(profile: string, env: Record<string, string>): Promise<string> {
  const pull = await spawnEmu(["--config", profile, "pull", "--skip-snapshot", "--json"], { env });
  assert.equal(pull.code, 0, pull.stderr);
  return basename(JSON.parse(pull.stdout).image.dir);
}

Deno.test(
  "images: ls, verify (and a damaged disk is caught), prune keeps the most recent, rm",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const id = await pulledId(await r.profile(), env);
      // A second installed image, older by last use.
      const images = join(r.dir, "home", "images");
      await Deno.mkdir(join(images, "1.3.0-image-amd64"));
      await Deno.copyFile(
        join(images, id, "disk.qcow2"),
        join(images, "1.3.0-image-amd64", "disk.qcow2"),
      );
      const meta = JSON.parse(
        await Deno.readTextFile(join(images, id, "image.json")),
      );
      await Deno.writeTextFile(
        join(images, "1.3.0-image-amd64", "image.json"),
        JSON.stringify({ ...meta, version: "1.3.0" }),
      );
      await Deno.writeTextFile(
        join(images, "1.3.0-image-amd64", "last_used"),
        "2020-01-01T00:00:00.000Z",
      );

      const ls = JSON.parse((await spawnEmu(["images", "ls", "--json"], { env })).stdout);
      assert.deepEqual(ls.images.map((i: { id: string }) => i.id), [id, "1.3.0-image-amd64"]);
      const verify = await spawnEmu(["images", "verify"], { env });
      assert.equal(verify.code, 0, verify.stdout);
      assert.equal(verify.stdout, `ok   ${id}\nok   1.3.0-image-amd64\n`);

      const disk = await Deno.open(join(images, "1.3.0-image-amd64", "disk.qcow2"), {
        write: true,
      });
      await disk.write(new Uint8Array([0xff]));
      disk.close();
      const damaged = await spawnEmu(["images", "verify", "1.3.0-image-amd64"], { env });
      assert.equal(damaged.code, 1);
      assert.match(
        damaged.stdout,
        /^BAD {2}1\.3\.0-image-amd64: sha256 is [0-9a-f]{64}, image\.json says [0-9a-f]{64}\n$/,
      );

      const prune = await spawnEmu(["images", "prune", "--keep", "1"], { env });
      assert.equal(prune.code, 0);
      assert.match(
        prune.stderr,
        /warning: removing image 1\.3\.0-image-amd64 \(last used 2020-01-01T00:00:00\.000Z\)/,
      );
      assert.equal((await spawnEmu(["images", "rm", id], { env })).code, 0);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(images)), []);
      const missing = await spawnEmu(["images", "rm", "nope"], { env });
      assert.equal(missing.code, 1);
      assert.match(
        missing.stderr,
        /^error\[image_unavailable\]: Cannot remove image nope: it is not installed/,
      );
    }),
);

Deno.test(
  "cache: a pull keeps the 2 most recently used images and warns about the rest",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const images = join(r.dir, "home", "images");
      for (
        const [id, used] of [["1.1.0-image-amd64", "2020-01-01T00:00:00.000Z"], [
          "1.2.0-image-amd64",
          "2021-01-01T00:00:00.000Z",
        ]]
      ) {
        await Deno.mkdir(join(images, id), { recursive: true });
        await Deno.writeFile(join(images, id, "disk.qcow2"), new Uint8Array(0));
        await Deno.writeTextFile(
          join(images, id, "image.json"),
          JSON.stringify({
            schema_version: 1,
            name: "old",
            version: id.split("-")[0],
            arch: "x86_64",
            disk: "disk.qcow2",
            sha256: "0".repeat(64),
            size: 0,
            source: "elsewhere",
          }),
        );
        await Deno.writeTextFile(join(images, id, "last_used"), used);
      }
      const pull = await spawnEmu(
        ["--config", await r.profile(), "pull", "--skip-snapshot", "--json"],
        { env },
      );
      assert.equal(pull.code, 0, pull.stderr);
      assert.match(
        pull.stderr,
        /warning: removed image 1\.1\.0-image-amd64 from the cache \(it keeps the 2 most recently used; emu images ls\)/,
      );
      assert.deepEqual((await Array.fromAsync(Deno.readDir(images))).map((e) => e.name).sort(), [
        "1.2.0-image-amd64",
        basename(JSON.parse(pull.stdout).image.dir),
      ]);
    }),
);

Deno.test(
  "cache: an installed disk that changed is refused before use",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withRelease(async (r) => {
      const env = { EMU_HOME: join(r.dir, "home") };
      const profile = await r.profile();
      const disk = join(r.dir, "home", "images", await pulledId(profile, env), "disk.qcow2");
      const f = await Deno.open(disk, { write: true });
      await f.write(new Uint8Array([1, 2, 3]));
      f.close();
      const capture = await spawnEmu(["--config", profile, "capture"], { env });
      assert.equal(capture.code, 1);
      assert.match(
        capture.stderr,
        /^error\[image_invalid\]: Cannot use image 1\.4\.0 in .*: sha256 is [0-9a-f]{64}, image\.json says [0-9a-f]{64}\nhint: The installed disk was changed or damaged: `emu pull --force` installs it again\./,
      );
    }),
);
