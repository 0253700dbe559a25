/**
 * `emu image publish`: an image directory (as `emu image build` writes it) → a signed
 * release directory, ready to upload:
 *
 *   <name>-<arch>.qcow2.zst   the disk, zstd-compressed (hashed raw and compressed on the way),
 *                             or <name>-<arch>.qcow2 when zstd would save almost nothing
 *   <name>-<arch>.image.json  the descriptor: version, arch, the disk's size and sha256, boot
 *   <name>-<arch>.vmlinuz     kernel and initrd, when the image boots by direct kernel
 *   <name>-<arch>.initrd
 *   SHA256SUMS, SHA256SUMS.sig
 *   manifest.json, manifest.json.sig   (with --base-url: a new one, or --manifest's with
 *                                       this release added)
 *
 * Everything is written into a work directory beside the output and renamed into place
 * at the end: a refusal or a failure leaves the output as it was.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants, createZstdCompress } from "node:zlib";
import { basename, dirname, join, resolve } from "node:path";
import { type ImageDescriptor, releaseFileNames } from "../artifact/descriptor.ts";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "../artifact/image_json.ts";
import { type Manifest, parseManifest } from "../artifact/manifest.ts";
import { addRelease, releaseEntry, sha256SumsText, type Sum } from "../artifact/release_write.ts";
import { fetchSignedManifest } from "../artifact/signed_manifest.ts";
import { verifySignature } from "../artifact/signature.ts";
import type { SigningKey } from "../artifact/signing.ts";
import { parseVersion } from "../artifact/versions.ts";
import { EmuError } from "../errors.ts";
import { MIN_ZSTD_SAVING, PUBLISH_ZSTD_LEVEL } from "./publish_defaults.ts";

export { MIN_ZSTD_SAVING, PUBLISH_ZSTD_LEVEL } from "./publish_defaults.ts";

/** Options of {@linkcode publishImage}. */
export interface PublishOptions {
  /** The image directory (holds `image.json`). */
  imageDir: string;
  /** The release directory to write (created; replaced only with `force`). */
  out: string;
  key: SigningKey;
  /** Where the files will be served from: makes `manifest.json`. */
  baseUrl?: string;
  /** An existing signed manifest (path or URL) to add this release to. */
  manifest?: string;
  /** Name the files for a GitHub release (`github:OWNER/REPO` sources); no manifest needed. */
  github?: boolean;
  /** Replace a non-empty `out`, and a release of the same version in `manifest`. */
  force?: boolean;
  /**
   * zstd level, 1–19: the disk is always compressed. Default: level
   * {@linkcode PUBLISH_ZSTD_LEVEL} when that saves at least {@linkcode MIN_ZSTD_SAVING},
   * else the disk is published as it is.
   */
  level?: number;
  /** The release version (default: `image.json`'s). */
  version?: string;
  /** The release time recorded in the manifest (default: now). */
  releasedAt?: string;
  onProgress?: (text: string) => void;
  signal?: AbortSignal;
}

/** One file of the release. */
export interface PublishedFile {
  name: string;
  bytes: number;
  sha256: string;
}

/** What {@linkcode publishImage} wrote. */
export interface PublishResult {
  out: string;
  version: string;
  arch: ImageInfo["arch"];
  files: PublishedFile[];
  /** The manifest written, or `null` (a GitHub release needs none). */
  manifest: string | null;
  /** The zstd level of the published disk, or `null` when it is published uncompressed. */
  level: number | null;
  /** Time spent compressing the disk. */
  compressMs: number;
}

function refuse(message: string, hint: string): EmuError {
  return new EmuError("publish_input", message, { hint });
}

/** Publishes the image in `options.imageDir` (see the module doc). */
export async function publishImage(options: PublishOptions): Promise<PublishResult> {
  const say = options.onProgress ?? (() => {});
  const imageDir = resolve(options.imageDir);
  const out = resolve(options.out);
  const level = options.level ?? PUBLISH_ZSTD_LEVEL;
  if (options.level !== undefined && (!Number.isInteger(level) || level < 1 || level > 19)) {
    throw new EmuError("usage", `Cannot use zstd level ${level}: it must be 1 to 19`);
  }
  const image = await readImage(imageDir);
  const version = releaseVersion(options.version ?? image.version, options.version !== undefined);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(image.name)) {
    throw refuse(
      `Cannot publish ${imageDir}: its name ${
        JSON.stringify(image.name)
      } cannot name release files`,
      "Rebuild it with `emu image build --name NAME` (letters, digits, '.', '_', '-').",
    );
  }
  if (!options.github && options.baseUrl === undefined) {
    throw new EmuError("usage", "Cannot publish without --base-url (or --github)", {
      hint:
        "--base-url is where the files will be served from (the manifest lists their URLs); --github names them for a GitHub release.",
    });
  }
  if (options.manifest !== undefined && options.baseUrl === undefined) {
    throw new EmuError("usage", "Cannot add to --manifest without --base-url", {
      hint: "The manifest lists each file's URL: give the directory they will be served from.",
    });
  }
  if (options.baseUrl !== undefined && !/^https?:\/\//.test(options.baseUrl)) {
    throw new EmuError(
      "usage",
      `Cannot use --base-url ${options.baseUrl}: it must be an https (or http) URL`,
    );
  }
  await checkOutput(out, options.force === true);
  let previous: Manifest | null = null;
  if (options.manifest !== undefined) {
    // Only releases the same key vouched for are carried forward.
    previous = await fetchSignedManifest(
      isUrlOrAbsolute(options.manifest) ? options.manifest : resolve(options.manifest),
      options.key.publicKeyPem,
      options.signal,
    );
    if (previous.releases.some((r) => r.version === version) && !options.force) {
      throw refuse(
        `Cannot publish ${version}: ${options.manifest} already has release ${version}`,
        "Publish a new version (emu image build --image-version, or --version), or replace it with --force.",
      );
    }
  }

  const names = releaseFileNames(image.name, image.arch);
  const work = join(dirname(out), `.${basename(out)}.publish-${crypto.randomUUID().slice(0, 8)}`);
  await Deno.mkdir(work, { recursive: true });
  try {
    const files: PublishedFile[] = [];
    say(`compressing ${basename(image.disk)} (${mib(image.size)}, zstd level ${level})`);
    const started = performance.now();
    let disk: PublishedFile = {
      name: names.disk,
      ...await compressDisk(image, join(work, names.disk), level, options.signal),
    };
    const compressMs = Math.round(performance.now() - started);
    let publishedLevel: number | null = level;
    if (options.level === undefined && disk.bytes > image.size * (1 - MIN_ZSTD_SAVING)) {
      say(
        `zstd saves only ${
          ((1 - disk.bytes / image.size) * 100).toFixed(1)
        }% (the qcow2 is compressed already): publishing the disk as it is`,
      );
      await Deno.remove(join(work, names.disk));
      disk = await copyHashed(image.disk, join(work, names.plainDisk));
      if (disk.sha256 !== image.sha256) {
        throw refuse(
          `Cannot publish ${image.dir}: ${basename(image.disk)} changed while it was published`,
          "Publish it again once nothing writes to it.",
        );
      }
      publishedLevel = null;
    }
    files.push(disk);

    const descriptor: ImageDescriptor = {
      schema_version: 1,
      name: image.name,
      version,
      arch: image.arch,
      disk: { file: disk.name, size: image.size, sha256: image.sha256 },
    };
    if (image.boot) {
      descriptor.boot = { kernel: names.kernel };
      files.push(await copyHashed(image.boot.kernel, join(work, names.kernel)));
      if (image.boot.initrd) {
        descriptor.boot.initrd = names.initrd;
        files.push(await copyHashed(image.boot.initrd, join(work, names.initrd)));
      }
      if (image.boot.append !== undefined) descriptor.boot.append = image.boot.append;
    }
    files.push(
      await writeHashed(
        join(work, names.descriptor),
        new TextEncoder().encode(`${JSON.stringify(descriptor, null, 2)}\n`),
      ),
    );

    const sums = new TextEncoder().encode(
      sha256SumsText(files.map((f): Sum => ({ name: f.name, sha256: f.sha256 }))),
    );
    await signInto(work, "SHA256SUMS", sums, options.key);

    let manifestPath: string | null = null;
    if (options.baseUrl !== undefined) {
      const entry = releaseEntry(
        version,
        options.releasedAt ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        options.baseUrl,
        files.map((f) => f.name),
      );
      const text = `${JSON.stringify(addRelease(previous, entry), null, 2)}\n`;
      parseManifest(text, "the new manifest");
      await signInto(work, "manifest.json", new TextEncoder().encode(text), options.key);
      manifestPath = join(out, "manifest.json");
    }
    await Deno.chmod(work, 0o755);
    await swapInto(work, out);
    say(`wrote release ${version} to ${out}`);
    return {
      out,
      version,
      arch: image.arch,
      files,
      manifest: manifestPath,
      level: publishedLevel,
      compressMs,
    };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

function isUrlOrAbsolute(source: string): boolean {
  return /^(https?|file):/.test(source) || source.startsWith("/");
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

async function readImage(dir: string): Promise<ImageInfo> {
  const text = await Deno.readTextFile(join(dir, IMAGE_JSON)).catch(() => null);
  if (text === null) {
    throw refuse(
      `Cannot publish ${dir}: it has no ${IMAGE_JSON}`,
      "Publish the directory `emu image build` wrote (the --out qcow2's directory).",
    );
  }
  const image = parseImageJson(text, dir);
  const info = await Deno.stat(image.disk).catch(() => null);
  if (info === null) {
    throw refuse(`Cannot publish ${dir}: ${image.disk} is missing`, "Rebuild the image.");
  }
  if (info.size !== image.size) {
    throw refuse(
      `Cannot publish ${dir}: ${
        basename(image.disk)
      } is ${info.size} bytes, ${IMAGE_JSON} says ${image.size}`,
      "The disk changed after it was built: rebuild the image (emu image build).",
    );
  }
  for (const file of [image.boot?.kernel, image.boot?.initrd]) {
    if (file !== undefined && !(await Deno.stat(file).then((s) => s.isFile, () => false))) {
      throw refuse(`Cannot publish ${dir}: ${file} is missing`, "Rebuild the image.");
    }
  }
  return image;
}

/** The release version: semver without build metadata (a label must name one release). */
function releaseVersion(version: string, fromFlag: boolean): string {
  const parsed = parseVersion(version);
  if (parsed === null) {
    const metadata = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?\+/.test(version);
    throw refuse(
      `Cannot publish version ${JSON.stringify(version)}: ${
        metadata
          ? "a release version may not carry build metadata (+…): two builds would share one label"
          : "it is not a semantic version"
      }`,
      fromFlag
        ? "Give --version as MAJOR.MINOR.PATCH, e.g. 1.4.0."
        : "Give the release its version with --version 1.4.0 (or build with --image-version).",
    );
  }
  return parsed;
}

async function checkOutput(out: string, force: boolean): Promise<void> {
  const info = await Deno.stat(out).catch(() => null);
  if (info === null) return;
  if (!info.isDirectory) {
    throw refuse(`Cannot publish into ${out}: it is not a directory`, "Give a directory path.");
  }
  let empty = true;
  for await (const _ of Deno.readDir(out)) {
    empty = false;
    break;
  }
  if (!empty && !force) {
    throw refuse(
      `Cannot publish into ${out}: it is not empty`,
      "Give a new directory, or replace its contents with --force.",
    );
  }
}

/** A pass-through stream that hashes and counts what flows through it. */
function tap(hash: Hash, count: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Uint8Array, _encoding, done) {
      hash.update(chunk);
      count.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/**
 * Streams the disk through sha256 (checked against image.json) and zstd into `dest`,
 * hashing the compressed bytes too: one read of the disk.
 */
async function compressDisk(
  image: ImageInfo,
  dest: string,
  level: number,
  signal?: AbortSignal,
): Promise<{ bytes: number; sha256: string }> {
  const raw = createHash("sha256");
  const rawCount = { bytes: 0 };
  const published = createHash("sha256");
  const publishedCount = { bytes: 0 };
  await pipeline(
    createReadStream(image.disk, { highWaterMark: 1024 * 1024 }),
    tap(raw, rawCount),
    createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level } }),
    tap(published, publishedCount),
    createWriteStream(dest, { mode: 0o644 }),
    { signal },
  );
  const rawSha = raw.digest("hex");
  if (rawSha !== image.sha256 || rawCount.bytes !== image.size) {
    throw refuse(
      `Cannot publish ${image.dir}: ${
        basename(image.disk)
      } has sha256 ${rawSha}, ${IMAGE_JSON} says ${image.sha256}`,
      "The disk changed after it was built: rebuild the image (emu image build).",
    );
  }
  await syncFile(dest);
  return { bytes: publishedCount.bytes, sha256: published.digest("hex") };
}

async function copyHashed(from: string, to: string): Promise<PublishedFile> {
  const hash = createHash("sha256");
  const count = { bytes: 0 };
  await pipeline(createReadStream(from), tap(hash, count), createWriteStream(to, { mode: 0o644 }));
  await syncFile(to);
  return { name: basename(to), bytes: count.bytes, sha256: hash.digest("hex") };
}

async function writeHashed(path: string, bytes: Uint8Array): Promise<PublishedFile> {
  await Deno.writeFile(path, bytes, { mode: 0o644 });
  await syncFile(path);
  return {
    name: basename(path),
    bytes: bytes.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
  };
}

/** Writes `name` and `name.sig` (checked with the key's own public half before use). */
async function signInto(dir: string, name: string, bytes: Uint8Array, key: SigningKey) {
  const signature = key.sign(bytes);
  await verifySignature(key.publicKeyPem, new Uint8Array(bytes), signature, name);
  await writeHashed(join(dir, name), bytes);
  await writeHashed(join(dir, `${name}.sig`), signature);
}

/**
 * Flushes a release file to disk and makes it world-readable: release files are public,
 * and emu's umask (077) would otherwise keep a web server from serving them.
 */
async function syncFile(path: string): Promise<void> {
  using file = await Deno.open(path, { read: true, write: true });
  await file.sync();
  await Deno.chmod(path, 0o644);
}

/** Puts the finished `work` directory at `out`; an older `out` goes only afterwards. */
async function swapInto(work: string, out: string): Promise<void> {
  const old = `${out}.old-${crypto.randomUUID().slice(0, 8)}`;
  const hadOld = await Deno.rename(out, old).then(() => true, () => false);
  try {
    await Deno.rename(work, out);
  } catch (err) {
    if (hadOld) await Deno.rename(old, out).catch(() => {});
    throw err;
  }
  if (hadOld) await Deno.remove(old, { recursive: true }).catch(() => {});
}
