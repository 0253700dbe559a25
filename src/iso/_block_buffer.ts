/**
 * A fixed output buffer that gathers the many small writes of an ISO image (metadata,
 * small files, sector padding) into large ones, and lets file contents be read straight
 * into its free space. Internal to the writer.
 *
 * @module
 */

/** Where full buffers go. Receives a view it must consume before its promise settles. */
export type Flush = (bytes: Uint8Array) => Promise<void>;

/** Gathers bytes and flushes them in large blocks. */
export class BlockBuffer {
  readonly #buffer: Uint8Array;
  readonly #flush: Flush;
  #used = 0;
  #total = 0;

  constructor(size: number, flush: Flush) {
    this.#buffer = new Uint8Array(size);
    this.#flush = flush;
  }

  /** Bytes accepted so far. */
  get total(): number {
    return this.#total;
  }

  /** Free space to read into; call {@linkcode commit} with how much was filled. */
  async free(): Promise<Uint8Array> {
    if (this.#used === this.#buffer.length) await this.flush();
    return this.#buffer.subarray(this.#used);
  }

  /** Marks `n` bytes of the space from {@linkcode free} as filled. */
  commit(n: number): void {
    this.#used += n;
    this.#total += n;
  }

  /** Copies `bytes` in, flushing as the buffer fills. */
  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const space = await this.free();
      const n = Math.min(space.length, bytes.length - at);
      space.set(bytes.subarray(at, at + n));
      this.commit(n);
      at += n;
    }
  }

  /** Appends `n` zero bytes. */
  async zeros(n: number): Promise<void> {
    while (n > 0) {
      const space = await this.free();
      const k = Math.min(space.length, n);
      space.fill(0, 0, k);
      this.commit(k);
      n -= k;
    }
  }

  /** Hands everything gathered so far to the flush function. */
  async flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.#flush(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }
}
