/**
 * Pulling a zstd image from a loopback HTTP server (python3 -m http.server, a separate
 * process): emu's download pipeline (hash + zstd + write + fsync + rename) vs
 * `curl -s URL | zstd -d | tee FILE | sha256sum`, without and with `sync FILE` after it
 * (emu's pull ends with an fsync), same run. Before each run, untimed, the last run's
 * files are deleted and `sync` writes out what is dirty. Each emu iteration is its own
 * process so its peak RSS (VmHWM) can be read; it is printed per run.
 *
 * The image: 400 MiB shaped like a disk (runs of random data and zeros) by default;
 * `EMU_BENCH_DOWNLOAD_MIB=1100 EMU_BENCH_DOWNLOAD_SHAPE=random` for an incompressible
 * one; `EMU_BENCH_DOWNLOAD_SOURCE=FILE` for a real disk (compressed with `zstd -1`, or
 * `EMU_BENCH_DOWNLOAD_LEVEL`). `EMU_BENCH_DOWNLOAD_TREES=/a,/b` adds a row per checkout of
 * emu (its `src/artifact/download.ts`), for an A/B of a change in one run.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { startStaticServer } from "./_static_server.ts";

const SOURCE = Deno.env.get("EMU_BENCH_DOWNLOAD_SOURCE");
const SIZE_MIB = Number(Deno.env.get("EMU_BENCH_DOWNLOAD_MIB") ?? 400);
const RANDOM = Deno.env.get("EMU_BENCH_DOWNLOAD_SHAPE") === "random";
const LEVEL = Deno.env.get("EMU_BENCH_DOWNLOAD_LEVEL") ?? "1";

const dir = await Deno.makeTempDir({ prefix: "emu-dl-bench-" });
const raw = join(dir, "stack.qcow2");
if (SOURCE) await Deno.copyFile(SOURCE, raw);
else {
  // Shaped like a disk image: runs of random data and of zeros (or all random).
  using f = await Deno.open(raw, { write: true, create: true });
  const block = new Uint8Array(1024 * 1024);
  for (let i = 0; i < SIZE_MIB; i++) {
    if (i % 3 === 0 && !RANDOM) block.fill(0);
    else {for (let j = 0; j < block.length; j += 65536) {
        crypto.getRandomValues(block.subarray(j, j + 65536));
      }}
    await f.write(block);
  }
}
const rawBytes = (await Deno.stat(raw)).size;
const zst = await new Deno.Command("zstd", {
  args: ["-q", `-${LEVEL}`, "-T0", raw, "-o", join(dir, "stack.qcow2.zst")],
}).output();
if (!zst.success) throw new Error("zstd failed");
await Deno.remove(raw);
const published = await Deno.readFile(join(dir, "stack.qcow2.zst"));
const sha256 = createHash("sha256").update(published).digest("hex");
const server = await startStaticServer(dir, 28000 + Math.floor(Math.random() * 1000));
const url = `${server.url}/stack.qcow2.zst`;
console.log(
  `published: ${(published.length / 2 ** 20).toFixed(0)} MiB zstd → ${
    (rawBytes / 2 ** 20).toFixed(0)
  } MiB`,
);
globalThis.addEventListener("unload", () => {
  server.kill();
  Deno.removeSync(dir, { recursive: true });
});

const DOWNLOAD = new URL("../../src/artifact/download.ts", import.meta.url).href;
const TREES = (Deno.env.get("EMU_BENCH_DOWNLOAD_TREES") ?? "").split(",").filter((t) => t !== "");
const options = {
  group: `pull a ${(rawBytes / 2 ** 20).toFixed(0)} MiB zstd image over loopback`,
  n: 3,
  warmup: 1,
};

/**
 * Untimed, before each run: the last run's files are deleted and everything dirty is
 * written out, so no run pays for the writeback of the one before it.
 */
async function settleDisk(): Promise<void> {
  for (const name of ["shell.qcow2", "emu.qcow2"]) {
    await Deno.remove(join(dir, name)).catch(() => {});
  }
  await new Deno.Command("sync").output();
}

Deno.bench(
  "curl | zstd -d | tee FILE | sha256sum",
  { ...options, baseline: true },
  async (b) => {
    await settleDisk();
    b.start();
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        `curl -s ${url} | zstd -dc | tee ${join(dir, "shell.qcow2")} | sha256sum > /dev/null`,
      ],
    }).output();
    b.end();
    if (!out.success) throw new Error("pipeline failed");
  },
);

Deno.bench("curl | zstd -d | tee FILE | sha256sum; sync FILE", options, async (b) => {
  const file = join(dir, "shell.qcow2");
  await settleDisk();
  b.start();
  const out = await new Deno.Command("sh", {
    args: ["-c", `curl -s ${url} | zstd -dc | tee ${file} | sha256sum > /dev/null && sync ${file}`],
  }).output();
  b.end();
  if (!out.success) throw new Error("pipeline failed");
});

for (
  const [name, module] of [
    ["emu download (one process per run)", DOWNLOAD],
    ...TREES.map((tree) => [
      `emu download of ${tree}`,
      new URL(`file://${join(tree, "src/artifact/download.ts")}`).href,
    ]),
  ]
) {
  // An async function: Deno.bench awaits only those, not a returned promise.
  Deno.bench(name, options, async (b) => {
    await settleDisk();
    b.start();
    await emuDownload(module, name);
    b.end();
  });
}

/** One pull by `download()` of `module`, in a process of its own; prints its peak RSS. */
async function emuDownload(module: string, name: string): Promise<void> {
  const script = `
    import { download } from ${JSON.stringify(module)};
    await download({ url: ${JSON.stringify(url)}, dest: ${
    JSON.stringify(join(dir, "emu.qcow2"))
  }, partDir: ${JSON.stringify(join(dir, "dl"))}, partId: "s", sha256: ${
    JSON.stringify(sha256)
  }, zstd: true, maxOutputBytes: ${rawBytes} });
    console.log(/VmHWM:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1]);
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", script], stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`${name} failed`);
  console.log(
    `${name} peak RSS: ${
      (Number(new TextDecoder().decode(out.stdout).trim()) / 1024).toFixed(0)
    } MiB`,
  );
}
