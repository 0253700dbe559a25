/**
 * Pulling a zstd image from a loopback HTTP server (python3 -m http.server, a separate
 * process): emu's download pipeline (hash + zstd + write + fsync + rename) vs
 * `curl -s URL | zstd -d | tee FILE | sha256sum`, without and with `sync FILE` after it
 * (emu's pull ends with an fsync), same run: the rows take turns, round after round (5
 * rounds after a warm-up round; `EMU_BENCH_DOWNLOAD_ROUNDS`), and the table printed at
 * the end is the result. Before each run, untimed, the last run's files are deleted and
 * `sync` writes out what is dirty. Each emu run is its own process so its peak RSS
 * (VmHWM) can be read.
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
const publishedBytes = published.length;
const server = await startStaticServer(dir, 28000 + Math.floor(Math.random() * 1000));
const url = `${server.url}/stack.qcow2.zst`;
console.log(
  `published: ${(publishedBytes / 2 ** 20).toFixed(0)} MiB zstd → ${
    (rawBytes / 2 ** 20).toFixed(0)
  } MiB`,
);
globalThis.addEventListener("unload", () => {
  server.kill();
  Deno.removeSync(dir, { recursive: true });
});

const DOWNLOAD = new URL("../../src/artifact/download.ts", import.meta.url).href;
const TREES = (Deno.env.get("EMU_BENCH_DOWNLOAD_TREES") ?? "").split(",").filter((t) => t !== "");
const ROUNDS = Number(Deno.env.get("EMU_BENCH_DOWNLOAD_ROUNDS") ?? 5);
const PEER = "curl | zstd -d | tee FILE | sha256sum; sync FILE";

/** One way of pulling the image, timed from its start to the file on disk. */
interface Row {
  name: string;
  run: () => Promise<void>;
  times: number[];
  rss: number[];
}

const rows: Row[] = [
  { name: "curl | zstd -d | tee FILE | sha256sum", run: () => pipeline(false) },
  { name: PEER, run: () => pipeline(true) },
  { name: "emu download()", run: () => emuDownload(DOWNLOAD, rows[2]) },
  ...TREES.map((tree, i) => ({
    name: `emu download() of ${tree}`,
    run: () =>
      emuDownload(new URL(`file://${join(tree, "src/artifact/download.ts")}`).href, rows[3 + i]),
  })),
].map((row) => ({ ...row, times: [], rss: [] }));

// The rows take turns (round after round) rather than each running all its iterations in
// a block: this VM's disk slows down under sustained writes, and a row run last would pay
// for the rows before it. The table is printed at the end.
Deno.bench({
  name: `${ROUNDS} rounds of every row, interleaved (the table at the end is the result)`,
  group: `pull a ${(rawBytes / 2 ** 20).toFixed(0)} MiB zstd image over loopback`,
  n: 1,
  warmup: 0,
  async fn() {
    if (rows[0].times.length > 0) return; // Deno.bench may call it again: the rounds run once
    for (const row of rows) await row.run(); // warm-up round, not counted
    for (let round = 0; round < ROUNDS; round++) {
      for (const row of rows) {
        await settleDisk();
        const started = performance.now();
        await row.run();
        row.times.push(performance.now() - started);
      }
    }
  },
});

globalThis.addEventListener("unload", () => {
  if (rows[0].times.length === 0) return;
  const peer = rows.find((r) => r.name === PEER)!;
  const min = (xs: number[]) => Math.min(...xs);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `\n${(publishedBytes / 2 ** 20).toFixed(0)} MiB zstd → ${
      (rawBytes / 2 ** 20).toFixed(0)
    } MiB, ${ROUNDS} interleaved rounds (ms; ratios against "${PEER}")`,
  );
  for (const row of rows) {
    const rss = row.rss.length ? `  peak RSS ${min(row.rss)}–${Math.max(...row.rss)} MiB` : "";
    console.log(
      `  ${row.name.padEnd(52)} min ${min(row.times).toFixed(0).padStart(5)}  median ${
        median(row.times).toFixed(0).padStart(5)
      }  max ${Math.max(...row.times).toFixed(0).padStart(5)}  ×${
        (min(row.times) / min(peer.times)).toFixed(2)
      } (min) ×${(median(row.times) / median(peer.times)).toFixed(2)} (median)${rss}`,
    );
  }
});

/**
 * Before each timed run: the last run's files are deleted and everything dirty is written
 * out, so no run pays for the writeback of the one before it.
 */
async function settleDisk(): Promise<void> {
  for (const name of ["shell.qcow2", "emu.qcow2"]) {
    await Deno.remove(join(dir, name)).catch(() => {});
  }
  await new Deno.Command("sync").output();
}

/** The shell pipeline, optionally ending with `sync FILE`. */
async function pipeline(sync: boolean): Promise<void> {
  const file = join(dir, "shell.qcow2");
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      `curl -s ${url} | zstd -dc | tee ${file} | sha256sum > /dev/null${
        sync ? ` && sync ${file}` : ""
      }`,
    ],
  }).output();
  if (!out.success) throw new Error("pipeline failed");
}

/** One pull by `download()` of `module`, in a process of its own; records its peak RSS. */
async function emuDownload(module: string, row: Row): Promise<void> {
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
  if (!out.success) throw new Error(`${row.name} failed`);
  row.rss.push(Math.round(Number(new TextDecoder().decode(out.stdout).trim()) / 1024));
}
