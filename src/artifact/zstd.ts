/**
 * Streaming zstd decompression with `node:zlib`, with backpressure, for downloads and
 * snapshot state files.
 *
 * Deno's node:zlib zstd stream reports a corrupt frame by throwing from a queued tick
 * instead of emitting "error", which would end the process. While decompressors are
 * open, that one error is caught here and handed to them; any other error is left alone.
 *
 * @module
 */
import type { ZstdDecompress } from "node:zlib";

const open = new Set<ZstdDecompressor>();

/** The most decompressed bytes handed on at once. */
export const OUTPUT_CHUNK_BYTES = 1024 * 1024;

function guard(event: ErrorEvent): void {
  const message = event.error instanceof Error ? event.error.message : "";
  if (!/^Zstd decompress error/.test(message)) return;
  event.preventDefault();
  for (const d of open) d.fail(event.error);
}

/** Decompresses what is written to it and hands each decompressed chunk to `onData`. */
export class ZstdDecompressor {
  readonly #stream: ZstdDecompress;
  #error: Error | null = null;
  #rejectDone: (err: Error) => void = () => {};
  readonly #done: Promise<void>;

  /**
   * A decompressor; `onData` runs synchronously per chunk, and a throw from it fails the
   * decompression. (`node:zlib` is loaded here, not at start-up: most commands never
   * decompress.)
   */
  static async create(onData: (chunk: Uint8Array) => void): Promise<ZstdDecompressor> {
    const { createZstdDecompress } = await import("node:zlib");
    // 1 MiB out per chunk, not zlib's 16 KiB: a 356 MiB disk came out in 715 chunks instead
    // of 23 315, each one a hash update and a write less (BENCHMARKS.md, «Download pipeline»).
    return new ZstdDecompressor(createZstdDecompress({ chunkSize: OUTPUT_CHUNK_BYTES }), onData);
  }

  private constructor(stream: ZstdDecompress, onData: (chunk: Uint8Array) => void) {
    this.#stream = stream;
    if (open.size === 0) globalThis.addEventListener("error", guard);
    open.add(this);
    this.#stream.on("data", (chunk: Uint8Array) => {
      try {
        onData(chunk);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    this.#done = new Promise((resolve, reject) => {
      this.#rejectDone = reject;
      this.#stream.on("end", () => resolve());
      this.#stream.on("error", (err: Error) => this.fail(err));
    });
    this.#done.catch(() => {});
  }

  /** Records a failure; later calls reject with the first one. */
  fail(err: Error): void {
    this.#error ??= err;
    this.#rejectDone(err);
    this.#close();
  }

  /** Feeds compressed bytes; waits while the decompressor is behind. */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#error) throw this.#error;
    if (!this.#stream.write(bytes)) {
      await Promise.race([
        new Promise<void>((r) => this.#stream.once("drain", () => r())),
        this.#done,
      ]);
    }
    if (this.#error) throw this.#error;
  }

  /** Ends the input and waits until every chunk was handed on. */
  async end(): Promise<void> {
    this.#stream.end();
    try {
      await this.#done;
    } finally {
      this.#close();
    }
    if (this.#error) throw this.#error;
  }

  /** Stops decompressing (before the consumer's file is closed). */
  settle(): Promise<void> {
    this.#close();
    this.#stream.destroy();
    return Promise.resolve();
  }

  #close(): void {
    open.delete(this);
    if (open.size === 0) globalThis.removeEventListener("error", guard);
  }
}
