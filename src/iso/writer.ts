/**
 * Writes an ISO 9660 + Joliet + Rock Ridge image, streaming file contents in chunks so
 * memory does not grow with file sizes. The whole layout is computed first, so the
 * volume size is exact before the first byte is written.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { EmuError } from "../errors.ts";
import { BlockBuffer, type Flush } from "./_block_buffer.ts";
import { SECTOR } from "./_encode.ts";
import { planIso } from "./layout.ts";
import { volumeLabel } from "./names.ts";
import { buildTree, type IsoEntry } from "./tree.ts";

/** Options of {@linkcode writeIso} and {@linkcode writeIsoFile}. */
export interface IsoWriteOptions {
  /** Volume label: `cidata` for a NoCloud seed, `EMUCFG` for emu's runtime disk. */
  label: string;
  /**
   * Every timestamp in the image. Default: `SOURCE_DATE_EPOCH` when set in
   * `env`, else 1970-01-01T00:00:00Z — never the clock, so builds are reproducible.
   */
  date?: Date;
  /**
   * {@linkcode writeIsoFile} only: fsync the image before renaming it into place, so a
   * crash never leaves a renamed but incomplete file. Default `true`.
   */
  sync?: boolean;
  /** Environment to read `SOURCE_DATE_EPOCH` from (default: none). */
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
}

/** What was written. */
export interface IsoWriteResult {
  bytes: number;
  sectors: number;
  files: number;
  directories: number;
  date: Date;
}

/** Output is gathered and written in blocks of this size. */
const BLOCK = 4 * 1024 * 1024;

/**
 * Resolves the image timestamp: `date`, else `SOURCE_DATE_EPOCH` (whole seconds), else
 * the Unix epoch.
 */
export function isoDate(
  date: Date | undefined,
  env: Record<string, string | undefined> = {},
): Date {
  if (date !== undefined) {
    if (
      Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 2155
    ) {
      throw new EmuError(
        "iso_invalid_input",
        `Cannot use ISO date ${date}: it must be a valid date from 1970 to 2155`,
      );
    }
    return date;
  }
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch === undefined || epoch === "") return new Date(0);
  if (!/^\d{1,12}$/.test(epoch)) {
    throw new EmuError(
      "iso_invalid_input",
      `Cannot use SOURCE_DATE_EPOCH="${epoch}": it must be whole seconds since 1970`,
      {
        hint: "Unset it, or set it to a number such as $(git log -1 --format=%ct).",
      },
    );
  }
  return isoDate(new Date(Number(epoch) * 1000));
}

/**
 * Writes the image of `entries` to `output`.
 *
 * @example
 * ```ts
 * import { writeIso } from "./writer.ts";
 * const chunks: Uint8Array[] = [];
 * const result = await writeIso(
 *   [{ path: "runtime.env", data: new TextEncoder().encode("A=1\n") }],
 *   new WritableStream({ write: (c) => { chunks.push(c.slice()); } }),
 *   { label: "EMUCFG" },
 * );
 * if (result.bytes !== chunks.reduce((n, c) => n + c.length, 0)) throw new Error();
 * ```
 */
export async function writeIso(
  entries: readonly IsoEntry[],
  output: WritableStream<Uint8Array>,
  options: IsoWriteOptions,
): Promise<IsoWriteResult> {
  const writer = output.getWriter();
  try {
    // The stream owns what it is given, so it gets a copy, not the reused block.
    const result = await writeTo(entries, (bytes) => writer.write(bytes.slice()), options);
    await writer.close();
    return result;
  } catch (err) {
    await writer.abort(err).catch(() => {});
    throw err;
  } finally {
    writer.releaseLock();
  }
}

/**
 * Writes the image to `path` atomically: a temp file beside it, fsync, rename. On any
 * failure the temp file is removed and `path` is left as it was.
 */
export async function writeIsoFile(
  entries: readonly IsoEntry[],
  path: string,
  options: IsoWriteOptions,
): Promise<IsoWriteResult> {
  const temp = join(dirname(path), `.${basename(path)}.tmp-${crypto.randomUUID()}`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? `the directory ${dirname(path)} does not exist`
      : err instanceof Deno.errors.PermissionDenied
      ? `permission denied in ${dirname(path)}`
      : (err as Error).message;
    throw new EmuError("io", `Cannot write ${path}: ${reason}`, {
      hint: "Write the image into an existing directory you can write to.",
      cause: err,
    });
  }
  try {
    const result = await writeTo(entries, (bytes) => writeAll(file, bytes), options);
    if (options.sync !== false) await file.sync();
    file.close();
    await Deno.rename(temp, path);
    return result;
  } catch (err) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

async function writeTo(
  entries: readonly IsoEntry[],
  flush: Flush,
  options: IsoWriteOptions,
): Promise<IsoWriteResult> {
  const label = volumeLabel(options.label);
  const date = isoDate(options.date, options.env);
  const sizes = statSources(entries);
  const root = buildTree(entries, (p) => sizes.get(p)!);
  const plan = planIso(root, { label, date });
  options.signal?.throwIfAborted();

  const out = new BlockBuffer(BLOCK, flush);
  await out.write(plan.header);
  for (const { sector, node } of plan.files) {
    if (sector * SECTOR !== out.total) {
      throw new Error(`Cannot write the ISO image: file data out of order at sector ${sector}`);
    }
    if (node.source.kind === "data") await out.write(node.source.data);
    else await copyFile(node.source.path, node.size, out, options.signal);
    await out.zeros((SECTOR - (node.size % SECTOR)) % SECTOR);
  }
  await out.flush();
  let files = 0;
  let directories = 0;
  const count = (dir: typeof root) => {
    directories++;
    for (const child of dir.children.values()) child.kind === "dir" ? count(child) : files++;
  };
  count(root);
  return {
    bytes: plan.totalSectors * SECTOR,
    sectors: plan.totalSectors,
    files,
    directories,
    date,
  };
}

// File system calls here are synchronous on purpose: a thousand small files cost a
// thread hand-off each when asynchronous, which made emu 2× slower than genisoimage.
// The event loop still turns at every block flush (an asynchronous write).
function statSources(entries: readonly IsoEntry[]): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const entry of entries) {
    if (entry.sourcePath === undefined || sizes.has(entry.sourcePath)) continue;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(entry.sourcePath);
    } catch (err) {
      const reason = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
      throw new EmuError(
        "iso_invalid_input",
        `Cannot add "${entry.path}" to the ISO image: cannot read ${entry.sourcePath}: ${reason}`,
      );
    }
    if (!info.isFile) {
      throw new EmuError(
        "iso_invalid_input",
        `Cannot add "${entry.path}" to the ISO image: ${entry.sourcePath} is not a regular file`,
      );
    }
    sizes.set(entry.sourcePath, info.size);
  }
  return sizes;
}

/** Reads `path` straight into the output buffer, checking it still has `size` bytes. */
async function copyFile(
  path: string,
  size: number,
  out: BlockBuffer,
  signal?: AbortSignal,
): Promise<void> {
  using file = Deno.openSync(path, { read: true });
  let copied = 0;
  while (copied < size) {
    signal?.throwIfAborted();
    const space = await out.free();
    const n = file.readSync(space.subarray(0, Math.min(space.length, size - copied)));
    if (n === null) break;
    out.commit(n);
    copied += n;
  }
  if (copied !== size || file.readSync(new Uint8Array(1)) !== null) {
    throw new EmuError(
      "iso_invalid_input",
      `Cannot add ${path} to the ISO image: it changed size while being written`,
      {
        hint: "Make sure nothing writes to the input while the image is built, then run again.",
      },
    );
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
