/**
 * One careful download (SPEC §5): HTTP body → sha256 of the bytes as published → zstd
 * decompression when compressed → temp file → fsync → atomic rename. The published bytes
 * also go to `<id>.part`, so an interrupted download resumes with `Range`/`If-Range`;
 * the bytes already there are re-read through the hash and the decompressor first, so
 * the whole file is always verified. A hash mismatch deletes the part file and installs
 * nothing; an abort leaves only the part file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { EmuError } from "../errors.ts";
import { sleep } from "../protocol/unix_socket.ts";
import { ZstdDecompressor } from "./zstd.ts";

/** Progress of one download. */
export interface DownloadProgress {
  /** Published bytes received so far, including a resumed part. */
  bytes: number;
  /** Total published bytes, if the server said. */
  total: number | null;
  /** Bytes already in the part file when this attempt started. */
  resumedFrom: number;
}

/** Options of {@linkcode download}. */
export interface DownloadOptions {
  url: string;
  /** Where the verified (and decompressed) file is renamed to. */
  dest: string;
  /** Directory of `<partId>.part` files. */
  partDir: string;
  /** Stable name of this artifact's part file (e.g. its sha256). */
  partId: string;
  /**
   * Expected sha256 of the published bytes (from SHA256SUMS), or `null` to compute it
   * without a check — only for the user's own local files (`file:` URLs).
   */
  sha256: string | null;
  /** Where the expected sha256 came from, for the mismatch message (default "SHA256SUMS"). */
  sha256Origin?: string;
  /** Decompress zstd on the way (the hash covers the compressed bytes). */
  zstd: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** Attempts for transient failures (connection reset, 5xx); default 4. */
  attempts?: number;
  /** Extra request headers (e.g. authorization for GitHub). */
  headers?: Record<string, string>;
}

/** What {@linkcode download} did. */
export interface DownloadResult {
  /** Published bytes. */
  bytes: number;
  /** Bytes written to `dest`. */
  outputBytes: number;
  /** The download continued a part file. */
  resumed: boolean;
  attempts: number;
  /** sha256 of the published bytes. */
  sha256: string;
}

interface PartMeta {
  url: string;
  validator: string | null;
}

class Transient extends Error {}

/** Downloads, verifies and installs one artifact. */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  if (options.sha256 === null && !options.url.startsWith("file:")) {
    throw new EmuError("internal", `Cannot download ${options.url} without a sha256 to check`);
  }
  await Deno.mkdir(options.partDir, { recursive: true });
  const attempts = options.attempts ?? 4;
  let resumedOnce = false;
  for (let attempt = 1;; attempt++) {
    try {
      const result = await attemptDownload(options);
      return { ...result, resumed: result.resumed || resumedOnce, attempts: attempt };
    } catch (err) {
      if (!(err instanceof Transient) || attempt >= attempts) {
        if (err instanceof Transient) {
          throw new EmuError(
            "download_failed",
            `Cannot download ${options.url}: ${err.message} (gave up after ${attempt} attempts)`,
            {
              hint: "Run the same command again: it continues where it stopped.",
            },
          );
        }
        throw err;
      }
      resumedOnce = true;
      await sleep(Math.min(250 * 2 ** (attempt - 1), 4000), options.signal);
    }
  }
}

async function attemptDownload(
  options: DownloadOptions,
): Promise<Omit<DownloadResult, "attempts">> {
  const part = join(options.partDir, `${options.partId}.part`);
  const metaPath = `${part}.json`;
  const meta: PartMeta | null = await Deno.readTextFile(metaPath).then(JSON.parse, () => null);
  let have = await Deno.stat(part).then((s) => s.size, () => 0);
  if (have > 0 && (meta === null || meta.url !== options.url || meta.validator === null)) {
    // A part we cannot prove is the same file: start over.
    await Deno.remove(part).catch(() => {});
    have = 0;
  }
  const headers: Record<string, string> = { ...options.headers };
  if (have > 0) {
    headers["range"] = `bytes=${have}-`;
    headers["if-range"] = meta!.validator!;
  }
  let response: Response;
  try {
    response = await fetch(options.url, { headers, signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) throw abortError(options.signal);
    throw new Transient(`connection failed (${(err as Error).message})`);
  }
  if (response.status >= 500) {
    await response.body?.cancel();
    throw new Transient(`the server answered ${response.status}`);
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    throw new EmuError(
      "download_failed",
      `Cannot download ${options.url}: the server answered ${response.status} ${response.statusText}`
        .trim(),
      {
        hint: response.status === 404
          ? "The release lists a file the server does not have; check the version."
          : "Check the URL and your access to it.",
      },
    );
  }
  if (response.status === 200 && have > 0) {
    // The file changed (If-Range failed) or ranges are not supported: start over.
    await Deno.remove(part).catch(() => {});
    have = 0;
  }
  const validator = response.headers.get("etag") ?? response.headers.get("last-modified");
  await Deno.writeTextFile(
    metaPath,
    JSON.stringify({ url: options.url, validator } satisfies PartMeta),
  );
  let length = Number(response.headers.get("content-length") ?? NaN);
  if (!Number.isFinite(length) && options.url.startsWith("file:")) {
    // Deno's file: responses carry no length; the file's size is the total.
    length = await Deno.stat(new URL(options.url)).then((s) => s.size, () => NaN);
  }
  const total = Number.isFinite(length) ? have + length : null;

  const temp = join(
    dirname(options.dest),
    `.${options.partId}.tmp-${crypto.randomUUID().slice(0, 8)}`,
  );
  await Deno.mkdir(dirname(options.dest), { recursive: true });
  const output = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
  // A local file needs no part to resume from: it is read again.
  const partFile = options.url.startsWith("file:")
    ? null
    : await Deno.open(part, { write: true, create: true, append: true, mode: 0o644 });
  const hash = createHash("sha256");
  const sink = options.zstd ? new ZstdSink(output) : new FileSink(output);
  let bytes = 0;
  let digest = "";
  let outcome: "ok" | "failed" = "failed";
  // A damaged download can break decompression before the hash is known: keep hashing,
  // and report the checksum (the real cause) first.
  let sinkError: unknown = null;
  const feed = async (chunk: Uint8Array) => {
    if (sinkError !== null) return;
    try {
      await sink.write(chunk);
    } catch (err) {
      sinkError = err;
    }
  };
  try {
    // The bytes already downloaded go through the hash and decompressor again.
    if (have > 0) {
      using existing = await Deno.open(part, { read: true });
      const buffer = new Uint8Array(1024 * 1024);
      while (true) {
        const n = await existing.read(buffer);
        if (n === null) break;
        hash.update(buffer.subarray(0, n));
        await feed(buffer.slice(0, n));
        bytes += n;
      }
    }
    const reader = response.body!.getReader();
    try {
      while (true) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (options.signal?.aborted) throw abortError(options.signal);
          throw new Transient(`the connection broke at ${bytes} bytes (${(err as Error).message})`);
        }
        if (chunk.done) break;
        hash.update(chunk.value);
        if (partFile) writeAllSync(partFile, chunk.value);
        await feed(chunk.value);
        bytes += chunk.value.length;
        options.onProgress?.({ bytes, total, resumedFrom: have });
      }
    } finally {
      reader.releaseLock();
    }
    if (total !== null && bytes < total) {
      throw new Transient(`the connection closed at ${bytes} of ${total} bytes`);
    }
    digest = hash.digest("hex");
    if (options.sha256 !== null && digest !== options.sha256) {
      await Deno.remove(part).catch(() => {});
      await Deno.remove(metaPath).catch(() => {});
      throw new EmuError(
        "checksum_mismatch",
        `Cannot install ${options.url}: its sha256 is ${digest}, ${
          options.sha256Origin ?? "SHA256SUMS"
        } says ${options.sha256}`,
        {
          hint:
            "The download was damaged or the file was replaced; nothing was installed. Run the command again.",
        },
      );
    }
    if (sinkError !== null) throw sinkError;
    await sink.end();
    await output.sync();
    outcome = "ok";
  } finally {
    if (outcome !== "ok") await sink.settle();
    partFile?.close();
    try {
      output.close();
    } catch { /* closed */ }
    if (outcome !== "ok") await Deno.remove(temp).catch(() => {});
  }
  const outputBytes = (await Deno.stat(temp)).size;
  await Deno.rename(temp, options.dest);
  await Deno.remove(part).catch(() => {});
  await Deno.remove(metaPath).catch(() => {});
  return { bytes, outputBytes, resumed: have > 0, sha256: digest };
}

function abortError(signal: AbortSignal): EmuError {
  return new EmuError(
    "aborted",
    "Cannot finish the download: it was cancelled; the part file is kept and the next run continues it",
    {
      cause: signal.reason,
    },
  );
}

// Writes are synchronous: a download is a long run of small chunks, and a thread
// hand-off per chunk made emu slower than `curl | zstd -d | tee`.
function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
}

interface Sink {
  write(bytes: Uint8Array): Promise<void>;
  end(): Promise<void>;
  /** Stops, and waits for anything still being written. */
  settle(): Promise<void>;
}

class FileSink implements Sink {
  constructor(private readonly file: Deno.FsFile) {}
  write(bytes: Uint8Array): Promise<void> {
    writeAllSync(this.file, bytes);
    return Promise.resolve();
  }
  end(): Promise<void> {
    return Promise.resolve();
  }
  settle(): Promise<void> {
    return Promise.resolve();
  }
}

/** zstd decompression into the output file. */
class ZstdSink implements Sink {
  readonly #zstd: ZstdDecompressor;

  constructor(file: Deno.FsFile) {
    this.#zstd = new ZstdDecompressor((chunk) => writeAllSync(file, chunk));
  }

  async write(bytes: Uint8Array): Promise<void> {
    await this.#zstd.write(bytes).catch((err) => {
      throw zstdError(err);
    });
  }

  async end(): Promise<void> {
    await this.#zstd.end().catch((err) => {
      throw zstdError(err);
    });
  }

  settle(): Promise<void> {
    return this.#zstd.settle();
  }
}

function zstdError(err: Error): EmuError {
  return new EmuError("download_failed", `Cannot decompress the download: ${err.message}`, {
    hint: "The file is not valid zstd, though its sha256 matched: the release itself is broken.",
  });
}
