/**
 * A snapshot's RAM file, compressed (docs/architecture.md, «On-disk layout», «Capture», «Start:
 * resume and rotation»): `emu capture --compress` turns the sparse `ram.raw` into `ram.zst` (zstd
 * level 1: the file is mostly zero pages, which cost nothing to compress); the first resume
 * decompresses it once into a sparse `ram.raw` beside it — zero blocks become holes, so it takes
 * only the guest's used memory on disk, as the capture did. (The functions take any file: they
 * were written for the mapped-ram state file, which held the RAM before the lazy restore.)
 *
 * @module
 */
import { ZstdDecompressor } from "../artifact/zstd.ts";
import { concatBytes } from "../bytes.ts";
import { EmuError } from "../errors.ts";

/** Block size for hole detection: the page size, which mapped-ram writes in. */
const BLOCK = 4096;
const CHUNK = 1024 * 1024;

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
}

/**
 * Writes `dest` through a temp file beside it: `body` fills the file, then fsync and
 * rename; on any failure the temp file goes and `dest` is untouched.
 */
async function writeAtomically<T>(
  dest: string,
  body: (out: Deno.FsFile) => Promise<T>,
): Promise<T> {
  const temp = `${dest}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const out = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
  try {
    const result = await body(out);
    await out.sync();
    out.close();
    await Deno.rename(temp, dest);
    return result;
  } catch (err) {
    try {
      out.close();
    } catch { /* closed */ }
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

/**
 * Compresses `raw` into `zst` (temp file, fsync, rename). Returns the compressed size.
 */
export async function compressState(raw: string, zst: string): Promise<number> {
  const { constants, createZstdCompress } = await import("node:zlib");
  const input = await Deno.open(raw, { read: true });
  const zstd = createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 1 } });
  try {
    await writeAtomically(zst, async (out) => {
      let failure: Error | null = null;
      zstd.on("data", (chunk: Uint8Array) => {
        try {
          writeAllSync(out, chunk);
        } catch (err) {
          failure ??= err as Error;
        }
      });
      const ended = new Promise<void>((resolve, reject) => {
        zstd.on("end", () => resolve());
        zstd.on("error", (err: Error) => reject(err));
      });
      ended.catch(() => {});
      const buffer = new Uint8Array(CHUNK);
      while (true) {
        const n = await input.read(buffer);
        if (n === null) break;
        if (!zstd.write(buffer.slice(0, n))) {
          await Promise.race([new Promise((r) => zstd.once("drain", r)), ended]);
        }
        if (failure) throw failure;
      }
      zstd.end();
      await ended;
      if (failure) throw failure;
    });
    return (await Deno.stat(zst)).size;
  } catch (err) {
    zstd.destroy();
    throw new EmuError(
      "snapshot_failed",
      `Cannot compress the snapshot state: ${(err as Error).message}`,
      {
        hint: "Check free disk space in the emu home, then capture again (emu capture --force).",
        cause: err,
      },
    );
  } finally {
    input.close();
  }
}

/** What {@linkcode decompressStateSparse} wrote. */
export interface SparseResult {
  logicalBytes: number;
  /** Bytes of data written (the rest are holes). */
  dataBytes: number;
}

/**
 * Decompresses `zst` into `raw` (temp file, fsync, rename), leaving holes for zero
 * blocks.
 *
 * @throws {EmuError} `snapshot_failed` when the file is not valid zstd.
 */
export async function decompressStateSparse(zst: string, raw: string): Promise<SparseResult> {
  const input = await Deno.open(zst, { read: true });
  let zstd: ZstdDecompressor | null = null;
  try {
    return await writeAtomically(raw, async (out) => {
      let offset = 0;
      let dataBytes = 0;
      // A block split across chunks is completed before it is judged.
      let pending = new Uint8Array(0);
      const consume = (bytes: Uint8Array, final: boolean) => {
        let at = 0;
        while (bytes.length - at >= BLOCK || (final && at < bytes.length)) {
          const block = bytes.subarray(at, Math.min(at + BLOCK, bytes.length));
          if (!isZero(block)) {
            out.seekSync(offset, Deno.SeekMode.Start);
            writeAllSync(out, block);
            dataBytes += block.length;
          }
          offset += block.length;
          at += block.length;
        }
        return bytes.slice(at);
      };
      zstd = await ZstdDecompressor.create((chunk) => {
        const joined = pending.length === 0 ? chunk : concatBytes([pending, chunk]);
        pending = consume(joined, false);
      });
      const buffer = new Uint8Array(CHUNK);
      while (true) {
        const n = await input.read(buffer);
        if (n === null) break;
        await zstd.write(buffer.slice(0, n));
      }
      await zstd.end();
      consume(pending, true);
      // The logical size, holes at the end included.
      await out.truncate(offset);
      return { logicalBytes: offset, dataBytes };
    });
  } catch (err) {
    await (zstd as ZstdDecompressor | null)?.settle();
    throw new EmuError(
      "snapshot_failed",
      `Cannot decompress the snapshot state ${zst}: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    input.close();
  }
}

const scratch = new Uint8Array(BLOCK);

/** Whether a block (at most {@linkcode BLOCK} bytes) is all zero, a word at a time. */
export function isZero(block: Uint8Array): boolean {
  let bytes = block;
  if (block.byteOffset % 4 !== 0 || block.length % 4 !== 0) {
    scratch.fill(0);
    scratch.set(block);
    bytes = scratch;
  }
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.ceil(bytes.length / 4));
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  return true;
}
