/**
 * Flushing a large file while it is still being written. Left alone, the kernel holds a
 * pull's writes in the page cache until the final fsync (or until dirty pages pass its
 * background threshold, when it also writes files about to be deleted, such as a verified
 * part file), and that fsync then waits for the whole disk image. Flushing every
 * {@linkcode WRITEBACK_BYTES} while the next bytes are downloaded or unpacked overlaps the
 * disk with the network and zstd, and keeps little dirty at any time.
 *
 * @module
 */

/** Bytes written between two flushes. */
export const WRITEBACK_BYTES = 64 * 1024 * 1024;

/**
 * Starts `fdatasync` on `file` in the background every `every` bytes written (one at a
 * time: none starts while another runs). An error of a background flush is kept and
 * thrown by {@linkcode settle}: Linux reports a write error to one fsync only, so it must
 * not be lost before the final one.
 */
export class Writeback {
  readonly #file: Pick<Deno.FsFile, "syncData">;
  readonly #every: number;
  #written = 0;
  #flushedAt = 0;
  #running: Promise<void> | null = null;
  #error: unknown = null;

  constructor(file: Pick<Deno.FsFile, "syncData">, every = WRITEBACK_BYTES) {
    this.#file = file;
    this.#every = every;
  }

  /** Records `bytes` more written; starts a flush when due and none is running. */
  wrote(bytes: number): void {
    this.#written += bytes;
    if (this.#running !== null || this.#written - this.#flushedAt < this.#every) return;
    this.#flushedAt = this.#written;
    this.#running = this.#file.syncData()
      .catch((err) => {
        this.#error ??= err;
      })
      .finally(() => this.#running = null);
  }

  /** Waits for a running flush; throws the first error any flush met. */
  async settle(): Promise<void> {
    await this.#running;
    if (this.#error !== null) throw this.#error;
  }
}
