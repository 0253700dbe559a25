/**
 * The local image cache (`images/<id>/`): list, remove, keep the most recently used N,
 * and re-verify an image's size and sha256.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "./image_json.ts";
import { IMAGE_FILES } from "../config/filenames.ts";
import { compareVersions, parseVersion } from "./versions.ts";
import { exists } from "../exists.ts";

/** Default number of images `prune` keeps. */
export const DEFAULT_KEEP = 2;

/** An installed image and when it was last used. */
export interface CachedImage {
  id: string;
  image: ImageInfo;
  lastUsed: Date;
}

/** Records that `image` was just used (its cache entry's last-use time). */
export async function touchImage(image: ImageInfo): Promise<void> {
  await Deno.writeTextFile(join(image.dir, IMAGE_FILES.lastUsed), new Date().toISOString()).catch(
    () => {},
  );
}

/**
 * The image installed in `dir`, or `null` when it has no `image.json`. A damaged
 * `image.json` is an error, not a missing image.
 */
export function readInstalledImage(dir: string): Promise<ImageInfo | null> {
  return Deno.readTextFile(join(dir, IMAGE_JSON)).then((t) => parseImageJson(t, dir), () => null);
}

/** Installed images, most recently used first. */
export async function listImages(imagesDir: string): Promise<CachedImage[]> {
  const out: CachedImage[] = [];
  try {
    for await (const e of Deno.readDir(imagesDir)) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      const dir = join(imagesDir, e.name);
      const image = await readInstalledImage(dir);
      if (image === null) continue;
      const used = await Deno.readTextFile(join(dir, IMAGE_FILES.lastUsed)).then(
        (t) => new Date(t.trim()),
        () => null,
      );
      const lastUsed = used && !Number.isNaN(used.getTime())
        ? used
        : (await Deno.stat(join(dir, IMAGE_JSON))).mtime ?? new Date(0);
      out.push({ id: e.name, image, lastUsed });
    }
  } catch { /* no cache yet */ }
  return out.sort((a, b) =>
    b.lastUsed.getTime() - a.lastUsed.getTime() || a.id.localeCompare(b.id)
  );
}

/** Removes image `id` from the cache. */
export async function removeImage(imagesDir: string, id: string): Promise<void> {
  if (id.includes("/") || id.startsWith(".") || id === "") {
    throw new EmuError("usage", `Cannot remove image ${JSON.stringify(id)}: not an image id`);
  }
  const dir = join(imagesDir, id);
  if (!(await exists(join(dir, IMAGE_JSON)))) {
    throw new EmuError("image_unavailable", `Cannot remove image ${id}: it is not installed`, {
      hint: "`emu images ls` lists the installed images.",
    });
  }
  await Deno.remove(dir, { recursive: true });
}

/** The images `prune` would remove: all but the `keep` most recently used. */
export function imagesToPrune(images: readonly CachedImage[], keep: number): CachedImage[] {
  return images.slice(Math.max(0, keep));
}

/** Re-reads an image's disk and checks its size and sha256 against image.json. */
export async function verifyImage(
  image: ImageInfo,
): Promise<{ ok: boolean; problem: string | null }> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(image.disk);
  } catch {
    return { ok: false, problem: `${image.disk} is missing` };
  }
  if (info.size !== image.size) {
    return { ok: false, problem: `size is ${info.size}, image.json says ${image.size}` };
  }
  const digest = await sha256File(image.disk);
  return digest === image.sha256
    ? { ok: true, problem: null }
    : { ok: false, problem: `sha256 is ${digest}, image.json says ${image.sha256}` };
}

/**
 * Checks an installed image before it is used: a fast path trusts the size and mtime
 * recorded when the disk was last fully verified; anything else re-hashes the disk.
 *
 * @throws {EmuError} `image_invalid` when the disk no longer matches image.json.
 */
export async function checkBeforeUse(image: ImageInfo): Promise<void> {
  const info = await Deno.stat(image.disk).catch(() => null);
  const stamp = info ? `${info.size}:${info.mtime?.getTime() ?? 0}` : "";
  const recorded = await Deno.readTextFile(join(image.dir, IMAGE_FILES.verified)).then(
    (t) => t.trim(),
    () => null,
  );
  if (info && recorded === stamp) return;
  const result = await verifyImage(image);
  if (!result.ok) {
    throw new EmuError(
      "image_invalid",
      `Cannot use image ${image.version} in ${image.dir}: ${result.problem}`,
      {
        hint: "The installed disk was changed or damaged: `emu pull --force` installs it again.",
      },
    );
  }
  await Deno.writeTextFile(join(image.dir, IMAGE_FILES.verified), stamp).catch(() => {});
}

/**
 * After a pull: keeps the `keep` most recently used images and removes the rest, except
 * those `inUse`; returns the ids removed (the caller warns).
 */
export async function evictImages(
  imagesDir: string,
  keep: number,
  inUse: ReadonlySet<string>,
): Promise<string[]> {
  const removed: string[] = [];
  for (const victim of imagesToPrune(await listImages(imagesDir), keep)) {
    if (inUse.has(victim.image.dir)) continue;
    await removeImage(imagesDir, victim.id);
    removed.push(victim.id);
  }
  return removed;
}

/** sha256 (hex) of a file, read in 4 MiB blocks. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(4 * 1024 * 1024);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}

/**
 * Finds the installed image for a release source and version, if any (no network): one
 * that this source published and the key with `keyFingerprint` vouched for (`null`: any
 * key, for listings only — never for an image about to be used).
 */
export async function installedImage(
  imagesDir: string,
  source: string,
  version: string,
  arch: "x86_64" | "aarch64",
  keyFingerprint: string | null,
): Promise<ImageInfo | null> {
  const wanted = version.replace(/^v/, "");
  const found = (await listImages(imagesDir))
    .map((c) => c.image)
    .filter((i) =>
      i.source === source && i.arch === arch &&
      (keyFingerprint === null || i.key_fingerprint === keyFingerprint) &&
      // "latest" means a release: CI builds (pr-N, run-ID) are picked only by name.
      (version === "latest"
        ? parseVersion(i.version) !== null
        : i.version.replace(/^v/, "") === wanted)
    )
    .sort((a, b) => compareVersions(b.version, a.version));
  return found[0] ?? null;
}
