/**
 * The download pipeline against a real HTTP server on 127.0.0.1, with files compressed
 * by the real zstd CLI: verify, resume, refuse, retry, abort.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { download } from "../../src/artifact/download.ts";
import { startServer, type TestServer } from "../_helpers/http_server.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function payload(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  }
  // Half random, half repetitive: zstd has something to do.
  out.fill(7, size / 2);
  return out;
}

async function zstd(bytes: Uint8Array, dir: string): Promise<Uint8Array> {
  await Deno.writeFile(join(dir, "in"), bytes);
  const out = await new Deno.Command("zstd", {
    args: ["-q", "-f", "-3", join(dir, "in"), "-o", join(dir, "in.zst")],
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return await Deno.readFile(join(dir, "in.zst"));
}

async function withServer(fn: (server: TestServer, dir: string) => Promise<void>) {
  if (!await requireTool("zstd", "zstd")) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-dl-" });
  const server = startServer();
  try {
    await fn(server, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function list(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test(
  "download: zstd image is hashed as published, decompressed, installed; no part left",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      const raw = payload(4 * 1024 * 1024);
      const zst = await zstd(raw, dir);
      server.file("/stack.qcow2.zst", zst);
      const dest = join(dir, "images", "disk.qcow2");
      const progress: number[] = [];
      const r = await download({
        url: `${server.url}/stack.qcow2.zst`,
        dest,
        partDir: join(dir, "downloads"),
        partId: "stack",
        sha256: sha(zst),
        zstd: true,
        onProgress: (p) => progress.push(p.bytes),
      });
      assert.deepEqual(await Deno.readFile(dest), raw);
      assert.deepEqual({ bytes: r.bytes, outputBytes: r.outputBytes, resumed: r.resumed }, {
        bytes: zst.length,
        outputBytes: raw.length,
        resumed: false,
      });
      assert.equal(progress.at(-1), zst.length);
      assert.deepEqual(await list(join(dir, "downloads")), []);
      assert.deepEqual(await list(join(dir, "images")), ["disk.qcow2"]);
    }),
);

Deno.test(
  "download: a connection dropped at 50% leaves a part file; the next run resumes with Range/If-Range",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      const raw = payload(2 * 1024 * 1024);
      const zst = await zstd(raw, dir);
      server.file("/a.zst", zst);
      server.fault("/a.zst", { kind: "drop-at", fraction: 0.5, times: 1 });
      const options = {
        url: `${server.url}/a.zst`,
        dest: join(dir, "out"),
        partDir: join(dir, "downloads"),
        partId: "a",
        sha256: sha(zst),
        zstd: true,
        attempts: 1,
      };
      await assert.rejects(download(options), {
        code: "download_failed",
        message: /the connection broke at \d+ bytes/,
      });
      const partSize = (await Deno.stat(join(dir, "downloads", "a.part"))).size;
      assert.ok(
        partSize > 0 && partSize < zst.length,
        `part has ${partSize} of ${zst.length} bytes`,
      );
      assert.equal(
        await Deno.stat(join(dir, "out")).then(() => true, () => false),
        false,
        "nothing installed",
      );

      const r = await download(options);
      assert.equal(r.resumed, true);
      const last = server.requests.at(-1)!;
      assert.equal(last.range, `bytes=${partSize}-`);
      assert.match(last.ifRange ?? "", /^"/);
      assert.deepEqual(await Deno.readFile(join(dir, "out")), raw);
      assert.deepEqual(await list(join(dir, "downloads")), []);
    }),
);

Deno.test(
  "download: a bit flip is refused; the part is removed and the old image is untouched",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      const raw = payload(1024 * 1024);
      const zst = await zstd(raw, dir);
      const flipped = zst.slice();
      flipped[Math.floor(flipped.length / 2)] ^= 0x10;
      server.file("/b.zst", flipped);
      const dest = join(dir, "disk.qcow2");
      await Deno.writeTextFile(dest, "the old image");
      await assert.rejects(
        download({
          url: `${server.url}/b.zst`,
          dest,
          partDir: join(dir, "dl"),
          partId: "b",
          sha256: sha(zst),
          zstd: true,
        }),
        {
          code: "checksum_mismatch",
          message: new RegExp(
            `^Cannot install .*: its sha256 is ${sha(flipped)}, SHA256SUMS says ${sha(zst)}$`,
          ),
        },
      );
      assert.equal(await Deno.readTextFile(dest), "the old image");
      assert.deepEqual(await list(join(dir, "dl")), []);
      assert.deepEqual((await list(dir)).filter((n) => n.includes("tmp")), []);
    }),
);

Deno.test(
  "download: 404 is a clear error at once; 500 then 200 is retried",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      const data = payload(300 * 1024);
      await assert.rejects(
        download({
          url: `${server.url}/missing`,
          dest: join(dir, "x"),
          partDir: join(dir, "dl"),
          partId: "m",
          sha256: sha(data),
          zstd: false,
        }),
        {
          code: "download_failed",
          message: new RegExp(
            `^Cannot download ${server.url}/missing: the server answered 404 Not Found$`,
          ),
        },
      );
      assert.equal(
        server.requests.filter((r) => r.path === "/missing").length,
        1,
        "4xx is not retried",
      );
      server.file("/c", data);
      server.fault("/c", { kind: "status", status: 500, times: 2 });
      const r = await download({
        url: `${server.url}/c`,
        dest: join(dir, "c"),
        partDir: join(dir, "dl"),
        partId: "c",
        sha256: sha(data),
        zstd: false,
      });
      assert.equal(r.attempts, 3);
      assert.deepEqual(await Deno.readFile(join(dir, "c")), data);
    }),
);

Deno.test(
  "download: an abort mid-download leaves only the resumable part file",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      const data = payload(8 * 1024 * 1024);
      server.file("/d", data);
      const controller = new AbortController();
      const options = {
        url: `${server.url}/d`,
        dest: join(dir, "d"),
        partDir: join(dir, "dl"),
        partId: "d",
        sha256: sha(data),
        zstd: false,
      };
      await assert.rejects(
        download({
          ...options,
          signal: controller.signal,
          onProgress: (p) => p.bytes > 1024 * 1024 && controller.abort(),
        }),
        { code: "aborted" },
      );
      assert.deepEqual(await list(join(dir, "dl")), ["d.part", "d.part.json"]);
      assert.deepEqual((await list(dir)).filter((n) => n !== "dl"), [], "no output, no temp file");
      const r = await download(options);
      assert.equal(r.resumed, true);
      assert.deepEqual(await Deno.readFile(join(dir, "d")), data);
    }),
);

Deno.test(
  "download: a zstd bomb that SHA256SUMS does not vouch for is never decompressed",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      // 256 MiB of zeros in a few KiB: the attacker's file in place of the release's.
      const zeros = join(dir, "zeros");
      using f = await Deno.open(zeros, { write: true, create: true });
      await f.truncate(256 * 1024 * 1024);
      const out = await new Deno.Command("zstd", {
        args: ["-q", "-19", zeros, "-o", `${zeros}.zst`],
      }).output();
      assert.ok(out.success);
      await Deno.remove(zeros);
      const bomb = await Deno.readFile(`${zeros}.zst`);
      assert.ok(bomb.length < 64 * 1024, `bomb is ${bomb.length} bytes`);
      server.file("/stack.qcow2.zst", bomb);
      const images = join(dir, "images");
      await Deno.mkdir(images);
      const created: string[] = [];
      const watcher = Deno.watchFs(images);
      const watching = (async () => {
        for await (const ev of watcher) created.push(...ev.paths);
      })();
      await assert.rejects(
        download({
          url: `${server.url}/stack.qcow2.zst`,
          dest: join(images, "disk.qcow2"),
          partDir: join(dir, "dl"),
          partId: "bomb",
          sha256: "0".repeat(64),
          zstd: true,
        }),
        { code: "checksum_mismatch" },
      );
      await new Promise((r) => setTimeout(r, 100));
      watcher.close();
      await watching;
      assert.deepEqual(created, [], "no byte was decompressed into the image directory");
      assert.deepEqual(await list(images), []);
      assert.deepEqual(await list(join(dir, "dl")), []);
    }),
);

Deno.test(
  "download: the installed file's own sha256 comes back; output past the declared size is refused",
  needs(TOOLS.zstd),
  () =>
    withServer(async (server, dir) => {
      const raw = payload(2 * 1024 * 1024);
      const zst = await zstd(raw, dir);
      server.file("/e.zst", zst);
      const options = {
        url: `${server.url}/e.zst`,
        dest: join(dir, "out", "disk.qcow2"),
        partDir: join(dir, "dl"),
        partId: "e",
        sha256: sha(zst),
        zstd: true,
      };
      await assert.rejects(download({ ...options, maxOutputBytes: raw.length - 1 }), {
        code: "image_invalid",
        message: new RegExp(`unpacks to more than the ${raw.length - 1} bytes`),
      });
      assert.deepEqual(await list(join(dir, "out")), [], "no temp file left");
      const r = await download({ ...options, maxOutputBytes: raw.length });
      assert.equal(r.outputSha256, sha(raw));
      assert.equal(r.sha256, sha(zst));
      assert.deepEqual(await Deno.readFile(options.dest), raw);

      // A plain file is moved from its verified part file: same bytes, same digest.
      server.file("/plain", raw);
      const plain = await download({
        ...options,
        url: `${server.url}/plain`,
        sha256: sha(raw),
        partId: "plain",
        zstd: false,
      });
      assert.equal(plain.outputSha256, sha(raw));
      assert.deepEqual(await list(join(dir, "dl")), []);
    }),
);
