/**
 * The trust model, tried as an attacker with a server of their own would: every attack
 * replayed against a real HTTP server on 127.0.0.1 with releases signed by the real
 * openssl, each refused with its error code, nothing installed, nothing changed.
 */
import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import {
  type Key,
  type PublishedRelease,
  publishManifest,
  publishRelease,
  releaseKey,
  releaseProfile,
  sha,
} from "../_helpers/release_server.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

interface World {
  server: TestServer;
  dir: string;
  env: Record<string, string>;
  publisher: Key;
  attacker: Key;
  /** `emu --config profile args…` with this world's home. */
  emu(profile: string, args: string[]): ReturnType<typeof spawnEmu>;
  images(): Promise<string[]>;
  requests(path: string): number;
  /**
   * The publisher's release 1.4.0 alone in /manifest.json (both signed), and a profile
   * for it.
   */
  single(): Promise<{ release: PublishedRelease; source: string; profile: string }>;
}

async function withWorld(fn: (w: World) => Promise<void>) {
  for (const [tool, pkg] of [["qemu-img", "qemu-utils"], ["zstd", "zstd"]] as const) {
    if (!await requireTool(tool, pkg)) return;
  }
  if (!await requireTool("openssl", "openssl", ["version"])) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-trust-" });
  const server = startServer();
  const env = { EMU_HOME: join(dir, "home") };
  try {
    const publisher = await releaseKey(dir, "publisher");
    await fn({
      server,
      dir,
      env,
      publisher,
      attacker: await releaseKey(dir, "attacker"),
      emu: (profile, args) => spawnEmu(["--config", profile, ...args], { env }),
      images: async () =>
        (await Array.fromAsync(Deno.readDir(join(dir, "home", "images"))).catch(() => []))
          .map((e) => e.name).filter((n) => !n.startsWith(".")).sort(),
      requests: (path) => server.requests.filter((q) => q.path === path).length,
      single: async () => {
        const release = await publishRelease(server, dir, {
          prefix: "r",
          version: "1.4.0",
          key: publisher,
          sizeMiB: 16,
        });
        const source = await publishManifest(server, dir, "/manifest.json", {
          latest_stable: "1.4.0",
          releases: [release.entry],
        }, { key: publisher });
        return { release, source, profile: await releaseProfile(dir, source, publisher) };
      },
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "trust: a release signed by another key for another source is never taken as cached",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withWorld(async (w) => {
      const evil = await publishRelease(w.server, w.dir, {
        prefix: "evil",
        version: "1.4.0",
        key: w.attacker,
        sizeMiB: 16,
      });
      const evilSource = await publishManifest(w.server, w.dir, "/evil/manifest.json", {
        latest_stable: "1.4.0",
        releases: [evil.entry],
      }, { key: w.attacker });
      const real = await publishRelease(w.server, w.dir, {
        prefix: "real",
        version: "1.4.0",
        key: w.publisher,
        sizeMiB: 17,
      });
      const realSource = await publishManifest(w.server, w.dir, "/real/manifest.json", {
        latest_stable: "1.4.0",
        releases: [real.entry],
      }, { key: w.publisher });
      const evilProfile = await releaseProfile(w.dir, evilSource, w.attacker);
      const realProfile = await releaseProfile(w.dir, realSource, w.publisher);

      // The attacker gets the user to pull their release once (same version number).
      const planted = await w.emu(evilProfile, ["pull", "--skip-snapshot", "--json"]);
      assert.equal(planted.code, 0, planted.stderr);

      const listed = await w.emu(realProfile, ["list-releases", "--json"]);
      assert.equal(JSON.parse(listed.stdout).releases[0].installed, false, "not the real 1.4.0");

      const pull = await w.emu(realProfile, ["pull", "--skip-snapshot", "--json"]);
      assert.equal(pull.code, 0, pull.stderr);
      const out = JSON.parse(pull.stdout);
      assert.equal(out.cached, false);
      assert.equal(w.requests(real.imagePath), 1, "the real image was downloaded");
      assert.deepEqual(await Deno.readFile(out.image.disk), real.disk);
      assert.notEqual(out.image.dir, JSON.parse(planted.stdout).image.dir);
      assert.equal((await w.images()).length, 2);
      const recorded = JSON.parse(await Deno.readTextFile(join(out.image.dir, "image.json")));
      assert.equal(recorded.source, realSource);
      assert.match(recorded.key_fingerprint, /^[0-9a-f]{64}$/);
    }),
);

Deno.test(
  "trust: an installed image that no longer matches the signed SHA256SUMS is pulled again",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withWorld(async (w) => {
      const { release: real, profile } = await w.single();
      const first = await w.emu(profile, ["pull", "--skip-snapshot", "--json"]);
      assert.equal(first.code, 0, first.stderr);
      const dir = JSON.parse(first.stdout).image.dir;
      // Someone swaps the cached disk and rewrites image.json to match it.
      const meta = JSON.parse(await Deno.readTextFile(join(dir, "image.json")));
      await Deno.writeTextFile(
        join(dir, "image.json"),
        JSON.stringify({ ...meta, published_sha256: "e".repeat(64) }),
      );
      const again = await w.emu(profile, ["pull", "--skip-snapshot", "--json"]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /the cached copy of 1\.4\.0 does not match its signed SHA256SUMS/);
      assert.equal(JSON.parse(again.stdout).cached, false);
      assert.equal(w.requests(real.imagePath), 2);
      assert.deepEqual(await Deno.readFile(join(dir, "disk.qcow2")), real.disk);
    }),
);

Deno.test(
  "trust: an unsigned, wrongly signed or relabelled manifest is refused; nothing installed",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withWorld(async (w) => {
      const old = await publishRelease(w.server, w.dir, {
        prefix: "r",
        version: "0.0.9",
        key: w.publisher,
        sizeMiB: 16,
      });
      const source = await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "0.0.9",
        releases: [old.entry],
      }, { key: w.publisher, sign: false });
      const profile = await releaseProfile(w.dir, source, w.publisher);
      const unsigned = await w.emu(profile, ["pull", "--skip-snapshot"]);
      assert.equal(unsigned.code, 1);
      assert.match(
        unsigned.stderr,
        /^error\[signature_invalid\]: Cannot trust the manifest http:\/\/127\.0\.0\.1:\d+\/manifest\.json: its signature http:\/\/127\.0\.0\.1:\d+\/manifest\.json\.sig cannot be read \(.*404\)\nhint: emu uses only signed manifests/,
      );

      // The attacker signs with their own key.
      await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "0.0.9",
        releases: [old.entry],
      }, { key: w.attacker });
      const wrong = await w.emu(profile, ["pull", "--skip-snapshot"]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /Cannot trust the manifest .*: its signature does not verify/);

      // A validly signed manifest, then relabelled: the old release presented as 9.0.0.
      await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "0.0.9",
        releases: [old.entry],
      }, { key: w.publisher });
      const relabelled = JSON.stringify({
        schema_version: 1,
        latest_stable: "9.0.0",
        releases: [{ ...old.entry, version: "9.0.0" }],
      });
      w.server.file("/manifest.json", new TextEncoder().encode(relabelled));
      const moved = await w.emu(profile, ["pull", "--skip-snapshot"]);
      assert.equal(moved.code, 1);
      assert.match(moved.stderr, /^error\[signature_invalid\]: Cannot trust the manifest/);

      assert.deepEqual(await w.images(), [], "nothing installed");
      assert.equal(w.requests(old.imagePath), 0, "no image byte was fetched");
    }),
);

Deno.test(
  "trust: a source that goes back to an older latest release is refused unless it is named",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withWorld(async (w) => {
      const r14 = await publishRelease(w.server, w.dir, {
        prefix: "r",
        version: "1.4.0",
        key: w.publisher,
        sizeMiB: 16,
      });
      const r15 = await publishRelease(w.server, w.dir, {
        prefix: "r",
        version: "1.5.0",
        key: w.publisher,
        sizeMiB: 17,
      });
      const source = await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "1.5.0",
        releases: [r15.entry, r14.entry],
      }, { key: w.publisher });
      const profile = await releaseProfile(w.dir, source, w.publisher);
      const first = await w.emu(profile, ["pull", "--skip-snapshot", "--json"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(JSON.parse(first.stdout).image.version, "1.5.0");
      const seen = JSON.parse(await Deno.readTextFile(join(w.dir, "home", "releases-seen.json")));
      assert.equal(seen[source].newest, "1.5.0");

      // The server replays an older manifest, validly signed back then.
      await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "1.4.0",
        releases: [r14.entry],
      }, { key: w.publisher });
      const before = await w.images();
      const back = await w.emu(profile, ["pull", "--skip-snapshot"]);
      assert.equal(back.code, 1);
      assert.match(
        back.stderr,
        /^error\[rollback_refused\]: Cannot use 1\.4\.0 as the latest release of http:.*\/manifest\.json: emu has already seen 1\.5\.0 there, so this would go back to an older release\nhint: .*name the version: --version 1\.4\.0\.\n$/,
      );
      assert.deepEqual(await w.images(), before, "nothing changed");
      assert.equal(w.requests(r14.imagePath), 0);

      const named = await w.emu(profile, [
        "pull",
        "--skip-snapshot",
        "--version",
        "1.4.0",
        "--json",
      ]);
      assert.equal(named.code, 0, named.stderr);
      assert.equal(JSON.parse(named.stdout).image.version, "1.4.0");
      const still = JSON.parse(await Deno.readTextFile(join(w.dir, "home", "releases-seen.json")));
      assert.equal(still[source].newest, "1.5.0", "naming an old version does not lower the mark");
    }),
);

Deno.test(
  "trust: non-semver versions and file: URLs in a remote manifest are refused; control characters are not printed",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withWorld(async (w) => {
      const r = await publishRelease(w.server, w.dir, {
        prefix: "r",
        version: "1.4.0",
        key: w.publisher,
        sizeMiB: 16,
      });
      const source = await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "9",
        releases: [{ ...r.entry, version: "9" }],
      }, { key: w.publisher });
      const profile = await releaseProfile(w.dir, source, w.publisher);
      const nine = await w.emu(profile, ["pull", "--skip-snapshot"]);
      assert.equal(nine.code, 1);
      assert.match(
        nine.stderr,
        /^error\[manifest_invalid\]: .*latest_stable must be a semantic version such as 1\.4\.0, got "9"/,
      );

      await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "1.4.0",
        releases: [{ ...r.entry, artifacts: { "image-amd64": "file:///etc/shadow.qcow2" } }],
      }, { key: w.publisher });
      const local = await w.emu(profile, ["pull", "--skip-snapshot"]);
      assert.equal(local.code, 1);
      assert.match(
        local.stderr,
        /^error\[manifest_invalid\]: .*releases\[0\]\.artifacts\.image-amd64 is a file: URL, which a remote manifest may not use/,
      );

      await publishManifest(w.server, w.dir, "/manifest.json", {
        latest_stable: "1.4.0",
        releases: [{ ...r.entry, released_at: "2026-11-01\u001b[2J\u001b]0;pwned\u0007" }],
      }, { key: w.publisher });
      const list = await w.emu(profile, ["list-releases"]);
      assert.equal(list.code, 0, list.stderr);
      assert.doesNotMatch(
        list.stdout,
        // deno-lint-ignore no-control-regex
        /[\x00-\x08\x0b-\x1f\x7f]/,
        "no escape reaches the terminal",
      );
      assert.match(list.stdout, /2026-11-01\[2J\]0;pw/);
      assert.deepEqual(await w.images(), []);
    }),
);

Deno.test("trust: a plain http image URL needs a #sha256= pin (its .sha256 vouches for nothing)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "emu-trust-" });
  try {
    const r = await spawnEmu(
      ["pull", "--source", "http://images.example.invalid/stack.qcow2.zst", "--skip-snapshot"],
      { env: { EMU_HOME: join(dir, "home") } },
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^error\[checksums_invalid\]: Cannot verify http:\/\/images\.example\.invalid\/stack\.qcow2\.zst: over plain http its \.sha256 could be replaced with the image\nhint: Use an https URL, or pin the image/,
    );
    assert.equal(
      await Deno.stat(join(dir, "home", "images")).then(() => true, () => false),
      false,
      "nothing was created",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "trust: the key fingerprint in image.json is the one openssl prints for the key",
  needs(TOOLS.openssl, TOOLS.qemuImg, TOOLS.zstd),
  () =>
    withWorld(async (w) => {
      const pull = await w.emu((await w.single()).profile, ["pull", "--skip-snapshot", "--json"]);
      assert.equal(pull.code, 0, pull.stderr);
      const der = await new Deno.Command("openssl", {
        args: ["pkey", "-pubin", "-outform", "DER"],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      const writer = der.stdin.getWriter();
      await writer.write(new TextEncoder().encode(w.publisher.pem));
      await writer.close();
      const bytes = (await der.output()).stdout;
      const meta = JSON.parse(
        await Deno.readTextFile(join(JSON.parse(pull.stdout).image.dir, "image.json")),
      );
      assert.equal(meta.key_fingerprint, sha(bytes));
      assert.match(
        basename(JSON.parse(pull.stdout).image.dir),
        /^1\.4\.0-image-amd64-[0-9a-f]{12}$/,
      );
    }),
);
