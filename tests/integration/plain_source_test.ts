/**
 * Plain qcow2 sources (docs/architecture.md, «Images and releases») through the real CLI: local
 * files imported into the cache (plain and zstd, re-imported when they change), URLs from a real
 * HTTP server on 127.0.0.1 verified against a published `.sha256` or a `#sha256=` pin, and the bad
 * cases (no hash to verify against, wrong hash, not qcow2) leaving nothing installed.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { startServer } from "../_helpers/http_server.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

async function withPlain(
  fn: (dir: string, pull: (source: string) => ReturnType<typeof spawnEmu>) => Promise<void>,
) {
  if (!await requireTool("qemu-img", "qemu-utils")) return;
  if (!await requireTool("zstd", "zstd")) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-plain-" });
  const env = { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run") };
  await Deno.writeTextFile(
    join(dir, "emu.json"),
    JSON.stringify({ name: "plain", image: { source: "unused.qcow2" } }),
  );
  try {
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "stack.qcow2", "16M"], dir);
    await fn(
      dir,
      (source) =>
        spawnEmu(
          [
            "--config",
            join(dir, "emu.json"),
            "pull",
            "--skip-snapshot",
            "--json",
            "--source",
            source,
          ],
          { env },
        ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function images(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(join(dir, "home", "images"))).catch(() => []))
    .map((e) => e.name).sort();
}

Deno.test(
  "plain source: a local qcow2 is imported once, and again when it changes",
  needs(TOOLS.qemuImg, TOOLS.zstd),
  () =>
    withPlain(async (dir, pull) => {
      const file = join(dir, "stack.qcow2");
      const bytes = await Deno.readFile(file);
      const first = await pull(file);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /importing stack\.qcow2\n/);
      const { image, cached } = JSON.parse(first.stdout);
      assert.equal(cached, false);
      assert.equal(image.sha256, sha(bytes));
      assert.equal(image.name, "stack");
      assert.equal(image.version, "local");
      assert.equal(image.source, file);
      assert.deepEqual(await Deno.readFile(image.disk), bytes);

      const again = await pull(file);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).cached, true);
      assert.doesNotMatch(again.stderr, /importing/);

      await run("qemu-img", ["resize", "-q", file, "32M"], dir);
      const changed = await pull(file);
      assert.equal(changed.code, 0, changed.stderr);
      const after = JSON.parse(changed.stdout);
      assert.equal(after.cached, false);
      assert.equal(after.image.sha256, sha(await Deno.readFile(file)));
      assert.equal((await images(dir)).length, 2);
    }),
);

Deno.test(
  "plain source: a local .qcow2.zst is decompressed on import",
  needs(TOOLS.zstd, TOOLS.qemuImg),
  () =>
    withPlain(async (dir, pull) => {
      await run("zstd", ["-q", "-19", "stack.qcow2", "-o", "stack.qcow2.zst"], dir);
      const r = await pull(join(dir, "stack.qcow2.zst"));
      assert.equal(r.code, 0, r.stderr);
      const { image } = JSON.parse(r.stdout);
      assert.deepEqual(
        await Deno.readFile(image.disk),
        await Deno.readFile(join(dir, "stack.qcow2")),
      );
      const recorded = JSON.parse(await Deno.readTextFile(join(image.dir, "image.json")));
      assert.equal(
        recorded.published_sha256,
        sha(await Deno.readFile(join(dir, "stack.qcow2.zst"))),
      );
    }),
);

Deno.test(
  "plain source: a file named .qcow2 that is not qcow2 is refused, nothing installed",
  needs(TOOLS.qemuImg, TOOLS.zstd),
  () =>
    withPlain(async (dir, pull) => {
      await Deno.writeTextFile(join(dir, "fake.qcow2"), "not an image\n");
      const r = await pull(join(dir, "fake.qcow2"));
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /\nerror\[image_invalid\]: Cannot use \S+fake\.qcow2: it is not a qcow2 image\n/,
      );
      assert.deepEqual(await images(dir), []);
    }),
);

Deno.test(
  "plain source: URLs are verified by .sha256 or a #sha256= pin; otherwise refused",
  needs(TOOLS.zstd, TOOLS.qemuImg),
  () =>
    withPlain(async (dir, pull) => {
      const server = startServer();
      try {
        await run("zstd", ["-q", "stack.qcow2", "-o", "stack.qcow2.zst"], dir);
        const zst = await Deno.readFile(join(dir, "stack.qcow2.zst"));
        const disk = await Deno.readFile(join(dir, "stack.qcow2"));
        server.file("/a/stack.qcow2.zst", zst);
        server.file("/b/stack.qcow2.zst", zst);

        // No hash published and none pinned: refused before downloading the image.
        const unverified = await pull(`${server.url}/b/stack.qcow2.zst`);
        assert.equal(unverified.code, 1);
        assert.match(
          unverified.stderr,
          /^error\[checksums_invalid\]: Cannot verify http:\/\/127\.0\.0\.1:\d+\/b\/stack\.qcow2\.zst: no #sha256=<hex> in the URL and no stack\.qcow2\.zst\.sha256 beside it/,
        );
        assert.equal(server.requests.some((r) => r.path === "/b/stack.qcow2.zst"), false);

        // A wrong pin: downloaded, refused, nothing installed.
        const wrong = await pull(`${server.url}/b/stack.qcow2.zst#sha256=${"0".repeat(64)}`);
        assert.equal(wrong.code, 1);
        assert.match(
          wrong.stderr,
          /^pulling stack\.qcow2\.zst\n(\{"event":"progress".*\n)*error\[checksum_mismatch\]: Cannot install \S+: its sha256 is [0-9a-f]{64}, its #sha256= pin says 0{64}\n/,
        );
        assert.deepEqual(await images(dir), []);

        // A published .sha256 beside it.
        server.file(
          "/a/stack.qcow2.zst.sha256",
          new TextEncoder().encode(`${sha(zst)}  stack.qcow2.zst\n`),
        );
        const ok = await pull(`${server.url}/a/stack.qcow2.zst`);
        assert.equal(ok.code, 0, ok.stderr);
        const { image } = JSON.parse(ok.stdout);
        assert.deepEqual(await Deno.readFile(image.disk), disk);
        assert.equal(image.version, "url");

        // A correct pin needs no .sha256.
        const pinned = await pull(`${server.url}/b/stack.qcow2.zst#sha256=${sha(zst)}`);
        assert.equal(pinned.code, 0, pinned.stderr);
        assert.equal(JSON.parse(pinned.stdout).cached, true, "same bytes, same cache entry");
      } finally {
        await server.close();
      }
    }),
);

Deno.test(
  "plain source: a cached URL image is reused only when its full sha256 matches the pin",
  needs(TOOLS.qemuImg, TOOLS.zstd),
  () =>
    withPlain(async (dir, pull) => {
      const server = startServer();
      try {
        const disk = await Deno.readFile(join(dir, "stack.qcow2"));
        server.file("/stack.qcow2", disk);
        const pinned = `${server.url}/stack.qcow2#sha256=${sha(disk)}`;
        const first = await pull(pinned);
        assert.equal(first.code, 0, first.stderr);
        const installed = JSON.parse(first.stdout).image;
        // Another image planted under the same id (the id holds only 16 hex digits of the
        // hash): its image.json names another full hash, so it is not taken as cached.
        const meta = JSON.parse(await Deno.readTextFile(join(installed.dir, "image.json")));
        await Deno.writeTextFile(
          join(installed.dir, "image.json"),
          JSON.stringify({
            ...meta,
            published_sha256: `${sha(disk).slice(0, 16)}${"0".repeat(48)}`,
          }),
        );
        const again = await pull(pinned);
        assert.equal(again.code, 0, again.stderr);
        assert.equal(JSON.parse(again.stdout).cached, false, "downloaded again");
        assert.equal(server.requests.filter((r) => r.path === "/stack.qcow2").length, 2);
        const third = await pull(pinned);
        assert.equal(JSON.parse(third.stdout).cached, true, "the re-installed copy is reused");
      } finally {
        await server.close();
      }
    }),
);
