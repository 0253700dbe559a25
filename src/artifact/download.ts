/**
 * One careful download: HTTP body → sha256 of the bytes as published → `<id>.part`;
 * only once that hash matches are the bytes decompressed (zstd) or moved → temp file →
 * fsync → atomic rename, hashed on the way so the installed file's own digest is known
 * without reading it again. The file that gets installed is flushed while it is written
 * (`writeback.ts`), so the final fsync has little left to wait for. An interrupted
 * download resumes with `Range`/`If-Range`; the bytes already there are re-read through
 * the hash first, so the whole file is always verified. A hash mismatch deletes the part
 * file and writes nothing else (a zstd bomb is never decompressed); an abort leaves only
 * the part file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { EmuError } from "../errors.ts";
import { abortedError, sleep } from "../async.ts";
import { ZstdDecompressor } from "./zstd.ts";
import { Writeback } from "./writeback.ts";

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
  /** Decompress zstd once the published (compressed) bytes are verified. */
  zstd: boolean;
  /** Refuse to write more than this to `dest` (a size the signed release declares). */
  maxOutputBytes?: number;
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
  /** sha256 of what was written to `dest` (the decompressed bytes of a .zst). */
  outputSha256: string;
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
  if (options.url.startsWith("file:")) return await installLocal(options);
  const part = join(options.partDir, `${options.partId}.part`);
  const metaPath = `${part}.json`;
  const fetched = await fetchToPart(options, part, metaPath);
  if (options.sha256 !== null && fetched.sha256 !== options.sha256) {
    await Deno.remove(part).catch(() => {});
    await Deno.remove(metaPath).catch(() => {});
    throw new EmuError(
      "checksum_mismatch",
      `Cannot install ${options.url}: its sha256 is ${fetched.sha256}, ${
        options.sha256Origin ?? "SHA256SUMS"
      } says ${options.sha256}`,
      {
        hint:
          "The download was damaged or the file was replaced; nothing was installed. Run the command again.",
      },
    );
  }
  // Only verified bytes are decompressed: a forged .zst never reaches the decompressor.
  const output = await installVerified(part, options, options.zstd ? null : fetched.sha256);
  await Deno.remove(part).catch(() => {});
  await Deno.remove(metaPath).catch(() => {});
  return { ...fetched, ...output };
}

/** The published bytes in the part file: what was there (proved the same file) plus the rest. */
async function fetchToPart(
  options: DownloadOptions,
  part: string,
  metaPath: string,
): Promise<{ bytes: number; sha256: string; resumed: boolean }> {
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
  const length = Number(response.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? have + length : null;

  const hash = createHash("sha256");
  let bytes = 0;
  // The bytes already downloaded go through the hash again: the whole file is verified.
  if (have > 0) {
    bytes = await readChunks(part, (chunk) => hash.update(chunk));
  }
  using partFile = await Deno.open(part, { write: true, create: true, append: true, mode: 0o600 });
  // A plain download's part file is what gets installed: it goes to disk on the way. A
  // .zst's is read once more and deleted, so it is left to the page cache.
  const writeback = options.zstd ? null : new Writeback(partFile);
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
      writeAllSync(partFile, chunk.value);
      writeback?.wrote(chunk.value.length);
      bytes += chunk.value.length;
      options.onProgress?.({ bytes, total, resumedFrom: have });
    }
    await writeback?.settle();
  } finally {
    reader.releaseLock();
    // No flush may outlive the file it flushes.
    await writeback?.settle().catch(() => {});
  }
  if (total !== null && bytes < total) {
    throw new Transient(`the connection closed at ${bytes} of ${total} bytes`);
  }
  return { bytes, sha256: hash.digest("hex"), resumed: have > 0 };
}

/**
 * The user's own local file (`file:` URL): checked first when a hash is expected, then
 * copied or decompressed, hashed on the way. It needs no part file: it is read again.
 */
async function installLocal(options: DownloadOptions): Promise<Omit<DownloadResult, "attempts">> {
  const path = new URL(options.url).pathname;
  const total = await Deno.stat(path).then((s) => s.size, () => null);
  if (total === null) {
    throw new EmuError("download_failed", `Cannot read ${path}: no such file`);
  }
  let published: string | null = null;
  if (options.sha256 !== null) {
    const hash = createHash("sha256");
    await readChunks(path, (chunk) => hash.update(chunk));
    published = hash.digest("hex");
    if (published !== options.sha256) {
      throw new EmuError(
        "checksum_mismatch",
        `Cannot install ${path}: its sha256 is ${published}, ${
          options.sha256Origin ?? "SHA256SUMS"
        } says ${options.sha256}`,
        { hint: "The file was changed; nothing was installed." },
      );
    }
  }
  const hash = published === null ? createHash("sha256") : null;
  let bytes = 0;
  const output = await installVerified(path, options, null, (chunk) => {
    hash?.update(chunk);
    bytes += chunk.length;
    options.onProgress?.({ bytes, total, resumedFrom: 0 });
  });
  return {
    bytes: total,
    resumed: false,
    sha256: published ?? hash!.digest("hex"),
    ...output,
  };
}

/** What {@linkcode installVerified} wrote. */
interface Installed {
  outputBytes: number;
  outputSha256: string;
}

/**
 * Writes the verified published file `source` to `options.dest`: decompressed (zstd) or
 * copied, hashed, capped at `options.maxOutputBytes`, fsynced, renamed into place. A
 * plain file whose hash is already known (`knownSha256`) is moved, not copied.
 */
async function installVerified(
  source: string,
  options: DownloadOptions,
  knownSha256: string | null,
  onInput?: (chunk: Uint8Array) => void,
): Promise<Installed> {
  await Deno.mkdir(dirname(options.dest), { recursive: true });
  if (knownSha256 !== null && !options.url.startsWith("file:")) {
    const size = (await Deno.stat(source)).size;
    checkCap(size, options);
    using file = await Deno.open(source, { write: true });
    await file.sync();
    const moved = await Deno.rename(source, options.dest).then(() => true, () => false);
    if (moved) return { outputBytes: size, outputSha256: knownSha256 };
  }
  const temp = join(
    dirname(options.dest),
    `.${options.partId}.tmp-${crypto.randomUUID().slice(0, 8)}`,
  );
  const output = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  const hash = createHash("sha256");
  const writeback = new Writeback(output);
  let outputBytes = 0;
  const write = (chunk: Uint8Array) => {
    outputBytes += chunk.length;
    checkCap(outputBytes, options);
    hash.update(chunk);
    writeAllSync(output, chunk);
    writeback.wrote(chunk.length);
  };
  const zstd = options.zstd ? await ZstdDecompressor.create(write) : null;
  let ok = false;
  try {
    await readChunks(source, async (chunk) => {
      if (options.signal?.aborted) throw abortError(options.signal);
      onInput?.(chunk);
      if (zstd === null) write(chunk);
      else await zstd.write(chunk).catch((err) => Promise.reject(zstdError(err)));
    });
    await zstd?.end().catch((err) => Promise.reject(zstdError(err)));
    await writeback.settle();
    await output.sync();
    ok = true;
  } finally {
    if (!ok) await zstd?.settle();
    await writeback.settle().catch(() => {});
    output.close();
    if (!ok) await Deno.remove(temp).catch(() => {});
  }
  await Deno.rename(temp, options.dest);
  return { outputBytes, outputSha256: hash.digest("hex") };
}

function checkCap(bytes: number, options: DownloadOptions): void {
  if (options.maxOutputBytes !== undefined && bytes > options.maxOutputBytes) {
    throw new EmuError(
      "image_invalid",
      `Cannot install ${options.url}: it unpacks to more than the ${options.maxOutputBytes} bytes its signed description declares`,
      { hint: "The release is inconsistent; nothing was installed." },
    );
  }
}

/** Reads `path` in 1 MiB blocks, handing each to `onChunk`; returns the bytes read. */
async function readChunks(
  path: string,
  onChunk: (chunk: Uint8Array) => unknown,
): Promise<number> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1024 * 1024);
  let total = 0;
  while (true) {
    const n = await file.read(buffer);
    if (n === null) return total;
    total += n;
    // A copy: the decompressor may keep the chunk while the buffer is refilled.
    await onChunk(buffer.slice(0, n));
  }
}

function abortError(signal: AbortSignal): EmuError {
  return abortedError(
    signal,
    "finish the download",
    "the part file is kept and the next run continues it",
  );
}

// Writes are synchronous: a download is a long run of small chunks, and a thread
// hand-off per chunk made emu slower than `curl | zstd -d | tee`.
function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += file.writeSync(bytes.subarray(at));
}

function zstdError(err: Error): EmuError {
  if (err instanceof EmuError) return err;
  return new EmuError("download_failed", `Cannot decompress the download: ${err.message}`, {
    hint: "The file is not valid zstd, though its sha256 matched: the release itself is broken.",
  });
}
