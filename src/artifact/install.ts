/**
 * Installing a verified image into the cache: the shared leaf of every way in (a signed
 * release, a plain qcow2, a CI artifact). A staging directory that holds the verified
 * disk (and boot files) becomes `images/<id>/` by rename, with `image.json` written
 * last, so an image directory is either complete or absent, and an older copy is
 * removed only after its replacement is in place.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { sha256File } from "./cache.ts";
import type { DownloadProgress } from "./download.ts";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "./image_json.ts";
import { IMAGE_FILES } from "../config/filenames.ts";

/** What every way of installing an image into the cache takes. */
export interface InstallTarget {
  arch: "x86_64" | "aarch64";
  imagesDir: string;
  downloadsDir: string;
  /** Download again even if the image is installed. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  onMessage?: (text: string) => void;
}

/** What a pull did. */
export interface PullResult {
  image: ImageInfo;
  /** The release was installed already; nothing was downloaded. */
  cached: boolean;
}

/** What `image.json` records about a downloaded image, beside its disk's own hash. */
export interface StagedImage {
  name: string;
  version: string;
  arch: "x86_64" | "aarch64";
  size: number;
  source: string;
  /** sha256 of the bytes as published (compressed, for a .zst). */
  published_sha256: string;
  /** sha256 of the installed disk, when it was taken on the way in (else it is read again). */
  sha256?: string;
  /** Fingerprint of the release key that vouched for it (signed releases). */
  key_fingerprint?: string;
  /** Boot files in the staging directory (file names) and the kernel command line. */
  boot?: { kernel: string; initrd?: string; append?: string };
}

/**
 * Installs a verified `staging/disk.qcow2` as the image directory `dir`: hashes the disk,
 * writes `image.json`, swaps the directory in by rename (an older copy goes only after),
 * and records it as verified and just used.
 */
export async function installStaged(
  staging: string,
  dir: string,
  fields: StagedImage,
): Promise<PullResult> {
  const image = {
    schema_version: 1,
    name: fields.name,
    version: fields.version,
    arch: fields.arch,
    disk: IMAGE_FILES.disk,
    sha256: fields.sha256 ?? await sha256File(join(staging, IMAGE_FILES.disk)),
    size: fields.size,
    source: fields.source,
    published_sha256: fields.published_sha256,
    ...(fields.key_fingerprint ? { key_fingerprint: fields.key_fingerprint } : {}),
    ...(fields.boot ? { boot: fields.boot } : {}),
    pulled_at: new Date().toISOString(),
  };
  await Deno.writeTextFile(join(staging, IMAGE_JSON), `${JSON.stringify(image, null, 2)}\n`);
  const old = `${dir}.old-${crypto.randomUUID().slice(0, 8)}`;
  const hadOld = await Deno.rename(dir, old).then(() => true, () => false);
  await Deno.rename(staging, dir);
  if (hadOld) await Deno.remove(old, { recursive: true }).catch(() => {});
  const disk = await Deno.stat(join(dir, IMAGE_FILES.disk));
  await Deno.writeTextFile(
    join(dir, IMAGE_FILES.verified),
    `${disk.size}:${disk.mtime?.getTime() ?? 0}`,
  );
  await Deno.writeTextFile(join(dir, IMAGE_FILES.lastUsed), new Date().toISOString());
  return {
    image: parseImageJson(await Deno.readTextFile(join(dir, IMAGE_JSON)), dir),
    cached: false,
  };
}

/**
 * The cache directory name of a release: its version and artifact name (for people), and
 * a hash of where it came from and the key that vouched for it, so that a release of one
 * source or key can never be taken for another's.
 *
 * @example
 * ```ts
 * import { imageCacheId } from "./install.ts";
 * const a = imageCacheId("https://a/manifest.json", "f".repeat(64), "1.4.0", "image-amd64");
 * const b = imageCacheId("https://b/manifest.json", "f".repeat(64), "1.4.0", "image-amd64");
 * if (a === b || !a.startsWith("1.4.0-image-amd64-")) throw new Error(a);
 * ```
 */
export function imageCacheId(
  sourceIdentity: string,
  keyFingerprint: string,
  version: string,
  artifact: string,
): string {
  const origin = createHash("sha256").update(`${sourceIdentity}\n${keyFingerprint}`).digest("hex");
  return `${version}-${artifact}-${origin.slice(0, 12)}`.replace(/[^A-Za-z0-9._-]/g, "_");
}
