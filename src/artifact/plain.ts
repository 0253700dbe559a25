/**
 * Plain image sources (docs/architecture.md, «Images and releases»): a qcow2 file path or URL,
 * optionally `.zst`, without a release manifest. Installed into the image cache like a release, so
 * the image is immutable under its snapshots:
 *
 * - a local file is imported (hash, decompress, fsync, rename) and found again by its
 *   path, size and modification time, so a changed file is imported anew;
 * - a URL is verified like every download: against `#sha256=<hex>` in the URL, or the
 *   `<url>.sha256` file published beside it (`sha256sum` format). Without either, emu
 *   refuses to use it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { EmuError } from "../errors.ts";
import { isQcow2File } from "./qcow2.ts";
import { download } from "./download.ts";
import { fetchSmall } from "./fetch_small.ts";
import { readInstalledImage } from "./cache.ts";
import { installStaged, type InstallTarget, type PullResult } from "./install.ts";
import { IMAGE_FILES } from "../config/filenames.ts";

/**
 * The sha256 a URL pins with a `#sha256=<hex>` fragment, or `null`.
 *
 * @example
 * ```ts
 * import { pinnedSha256 } from "./plain.ts";
 * if (pinnedSha256(`https://x/s.qcow2#sha256=${"a".repeat(64)}`) !== "a".repeat(64)) throw new Error();
 * ```
 */
export function pinnedSha256(url: string): string | null {
  const m = /#sha256=([0-9a-fA-F]{64})$/.exec(url);
  return m ? m[1].toLowerCase() : null;
}

/**
 * The hash in a `.sha256` file: `<hex>` alone, or `<hex>  <name>` lines (the line for
 * `fileName`, or the only line).
 *
 * @throws {EmuError} `checksums_invalid` when there is no usable hash.
 */
export function parseSha256File(text: string, fileName: string, url: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const entries = lines.map((l) => /^([0-9a-fA-F]{64})(?:\s+\*?(\S.*))?$/.exec(l));
  const valid = entries.filter((m): m is RegExpExecArray => m !== null);
  const chosen = valid.find((m) => m[2] === fileName) ??
    (lines.length === 1 && valid.length === 1 ? valid[0] : undefined);
  if (!chosen || valid.length !== lines.length) {
    throw new EmuError(
      "checksums_invalid",
      `Cannot verify ${url}: its .sha256 file has no hash for ${fileName}`,
      {
        hint:
          "Publish `sha256sum FILE > FILE.sha256` beside the image, or pin it: URL#sha256=<hex>.",
      },
    );
  }
  return chosen[1].toLowerCase();
}

/**
 * Whether `url` is https, or http to this machine (127.0.0.0/8, ::1, localhost), where
 * no one else is on the path.
 *
 * @example
 * ```ts
 * import { isHttpsOrLoopback } from "./plain.ts";
 * if (!isHttpsOrLoopback("http://127.0.0.1:8080/a") || isHttpsOrLoopback("http://example.com/a")) throw new Error();
 * ```
 */
export function isHttpsOrLoopback(url: string): boolean {
  const parsed = new URL(url);
  if (parsed.protocol === "https:") return true;
  if (parsed.protocol !== "http:") return false;
  return /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(parsed.hostname);
}

/** Options of {@linkcode pullPlainImage}. */
export interface PlainPullOptions extends InstallTarget {
  /** An absolute qcow2 path, or an http(s) URL. */
  source: string;
}

/** Installs (or finds installed) the image at a plain source. */
export async function pullPlainImage(options: PlainPullOptions): Promise<PullResult> {
  const remote = /^https?:/.test(options.source);
  const url = remote ? options.source.replace(/#.*$/, "") : options.source;
  const fileName = decodeURIComponent(basename(remote ? new URL(url).pathname : url));
  let expected: string | null = null;
  let origin = "its #sha256= pin";
  let id: string;
  if (remote) {
    const pinned = pinnedSha256(options.source);
    if (pinned === null) origin = `${fileName}.sha256`;
    if (pinned === null && !isHttpsOrLoopback(url)) {
      // A .sha256 fetched over plain http vouches for nothing: whoever can change the
      // image on the way can change its hash too.
      throw new EmuError(
        "checksums_invalid",
        `Cannot verify ${url}: over plain http its .sha256 could be replaced with the image`,
        {
          hint: "Use an https URL, or pin the image: URL#sha256=<hex> (sha256sum prints it).",
        },
      );
    }
    expected = pinned ?? parseSha256File(
      new TextDecoder().decode(
        await fetchSmall(`${url}.sha256`, 4096, `${fileName}.sha256`, options.signal).catch(
          (err) => {
            throw new EmuError(
              "checksums_invalid",
              `Cannot verify ${url}: no #sha256=<hex> in the URL and no ${fileName}.sha256 beside it (${
                (err as Error).message
              })`,
              {
                hint:
                  "emu installs only verified downloads: publish FILE.sha256 beside the image, or pin it with URL#sha256=<hex>.",
              },
            );
          },
        ),
      ),
      fileName,
      url,
    );
    id = `url-${expected.slice(0, 16)}`;
  } else {
    const info = await Deno.stat(url).catch(() => null);
    if (!info?.isFile) {
      throw new EmuError("image_unavailable", `Cannot use image ${url}: no such file`, {
        hint: "Check image.source in emu.json (relative paths are relative to emu.json).",
      });
    }
    const key = `${url}\0${info.size}\0${info.mtime?.getTime() ?? 0}`;
    id = `file-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
  }
  const dir = join(options.imagesDir, id);
  const installed = await readInstalledImage(dir).catch(() => null);
  // The id holds 16 hex digits of the hash: the whole hash must match.
  if (
    installed && !options.force && (expected === null || installed.published_sha256 === expected)
  ) {
    return { image: installed, cached: true };
  }

  options.onMessage?.(`${remote ? "pulling" : "importing"} ${fileName}`);
  const staging = join(options.imagesDir, `.pull-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const disk = join(staging, IMAGE_FILES.disk);
    const result = await download({
      url: remote ? url : new URL(`file://${url}`).href,
      dest: disk,
      partDir: options.downloadsDir,
      partId: expected ?? id,
      sha256: expected,
      sha256Origin: origin,
      zstd: fileName.endsWith(".zst"),
      signal: options.signal,
      onProgress: options.onProgress,
    });
    if (!await isQcow2File(disk)) {
      throw new EmuError("image_invalid", `Cannot use ${options.source}: it is not a qcow2 image`, {
        hint: "image.source may name a qcow2 file (optionally zstd-compressed as .qcow2.zst).",
      });
    }
    return await installStaged(staging, dir, {
      name: fileName.replace(/(\.qcow2)?(\.zst)?$/, ""),
      version: remote ? "url" : "local",
      arch: options.arch,
      size: result.outputBytes,
      source: options.source,
      published_sha256: result.sha256,
      sha256: result.outputSha256,
    });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}
