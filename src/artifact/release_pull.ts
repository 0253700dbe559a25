/**
 * Installing one release's image for this architecture: `SHA256SUMS` verified against
 * its signature, then every file against `SHA256SUMS` — the image descriptor (which
 * names the release version, the disk's installed size and sha256, and the boot files),
 * the disk (decompressed only once verified, capped at the declared size, and checked
 * against the declared sha256), the kernel and the initrd. Nothing is installed unless
 * every check passed.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { readInstalledImage } from "./cache.ts";
import {
  imageArtifactNames,
  type ImageDescriptor,
  MAX_DESCRIPTOR_BYTES,
  parseDescriptor,
} from "./descriptor.ts";
import { download } from "./download.ts";
import { fetchSmall } from "./fetch_small.ts";
import { imageCacheId, installStaged, type InstallTarget, type PullResult } from "./install.ts";
import { printable, type Release } from "./manifest.ts";
import { MAX_SHA256SUMS_BYTES, parseSha256Sums } from "./sha256sums.ts";
import { MAX_SIGNATURE_BYTES, requireKey } from "./signed_manifest.ts";
import { keyFingerprint, verifySignature } from "./signature.ts";
import { IMAGE_FILES } from "../config/filenames.ts";

/** Options of {@linkcode pullRelease}. */
export interface ReleasePullOptions extends InstallTarget {
  /** The source as the profile names it (recorded in image.json). */
  source: string;
  /** PEM public key that signs SHA256SUMS. */
  publicKey: string | undefined;
  /** Headers for every request (e.g. a GitHub token and `Accept`). */
  headers?: Record<string, string>;
  /** What names the source in the cache key, when `source` alone does not (a GitHub API base). */
  sourceIdentity?: string;
  /** The published file name behind a URL whose path does not end in it (GitHub API assets). */
  fileNameOf?: (url: string) => string | undefined;
}

const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** One file of the release: where it is, its name, and its sha256 from SHA256SUMS. */
interface ReleaseFile {
  url: string;
  name: string;
  sha256: string;
}

/**
 * Installs this architecture's image of `release` (see the module doc). An installed
 * copy is reused only when its source, key and published sha256 match the verified
 * SHA256SUMS.
 */
export async function pullRelease(
  release: Release,
  options: ReleasePullOptions,
): Promise<PullResult> {
  const say = options.onMessage ?? (() => {});
  requireKey(options.publicKey);
  const fingerprint = keyFingerprint(options.publicKey);
  const names = imageArtifactNames(options.arch);
  const diskUrl = release.artifacts[names.disk];
  if (diskUrl === undefined) {
    throw new EmuError(
      "release_not_found",
      `Cannot pull release ${release.version}: it has no ${names.disk} (it has ${
        Object.keys(release.artifacts).join(", ") || "nothing"
      })`,
      { hint: "This release was not built for this architecture; pick another version." },
    );
  }
  const dir = join(
    options.imagesDir,
    imageCacheId(
      options.sourceIdentity ?? options.source,
      fingerprint,
      release.version,
      names.disk,
    ),
  );
  const sums = await verifiedSums(release, options.publicKey, options);
  const fileNameOf = (url: string) =>
    options.fileNameOf?.(url) ?? decodeURIComponent(new URL(url).pathname.split("/").pop()!);
  const listed = (url: string): ReleaseFile => {
    const name = fileNameOf(url);
    const sha256 = sums.get(name);
    if (sha256 === undefined) {
      throw new EmuError(
        "checksums_invalid",
        `Cannot pull ${printable(name)}: SHA256SUMS of release ${release.version} does not list it`,
        { hint: "The release is incomplete; nothing was installed." },
      );
    }
    return { url, name, sha256 };
  };
  const disk = listed(diskUrl);
  const descriptorUrl = release.artifacts[names.descriptor];
  const descriptor = descriptorUrl === undefined
    ? null
    : await fetchDescriptor(listed(descriptorUrl), release, options);
  if (descriptor !== null && descriptor.disk.file !== disk.name) {
    throw new EmuError(
      "image_invalid",
      `Cannot pull release ${release.version}: its descriptor describes ${
        printable(descriptor.disk.file)
      }, but its disk is ${printable(disk.name)}`,
      { hint: "The release is inconsistent; nothing was installed." },
    );
  }
  const bootFile = (name: string): ReleaseFile => {
    const url = Object.values(release.artifacts).find((u) => fileNameOf(u) === name);
    if (url === undefined) {
      throw new EmuError(
        "release_not_found",
        `Cannot pull release ${release.version}: its descriptor names ${
          printable(name)
        }, which the release does not carry`,
        { hint: "The release is incomplete; nothing was installed." },
      );
    }
    return listed(url);
  };
  const kernel = descriptor?.boot ? bootFile(descriptor.boot.kernel) : null;
  const initrd = descriptor?.boot?.initrd ? bootFile(descriptor.boot.initrd) : null;

  const installed = await readInstalledImage(dir).catch(() => null);
  if (installed && !options.force) {
    if (
      installed.source === options.source && installed.key_fingerprint === fingerprint &&
      installed.published_sha256 === disk.sha256
    ) return { image: installed, cached: true };
    say(
      `the cached copy of ${release.version} does not match its signed SHA256SUMS: pulling it again`,
    );
  }
  say(`pulling ${printable(disk.name)} (release ${release.version})`);
  const staging = join(options.imagesDir, `.pull-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const fetchTo = (file: ReleaseFile, dest: string, extra: { maxOutputBytes?: number } = {}) =>
      download({
        url: file.url,
        dest: join(staging, dest),
        partDir: options.downloadsDir,
        partId: file.sha256,
        sha256: file.sha256,
        zstd: file.name.endsWith(".zst"),
        signal: options.signal,
        headers: options.headers,
        ...extra,
      });
    const result = await download({
      url: disk.url,
      dest: join(staging, IMAGE_FILES.disk),
      partDir: options.downloadsDir,
      partId: disk.sha256,
      sha256: disk.sha256,
      zstd: disk.name.endsWith(".zst"),
      signal: options.signal,
      onProgress: options.onProgress,
      headers: options.headers,
      maxOutputBytes: descriptor?.disk.size,
    });
    if (
      descriptor !== null &&
      (result.outputSha256 !== descriptor.disk.sha256 ||
        result.outputBytes !== descriptor.disk.size)
    ) {
      throw new EmuError(
        "checksum_mismatch",
        `Cannot install ${
          printable(disk.name)
        }: it unpacks to ${result.outputBytes} bytes with sha256 ${result.outputSha256}, its descriptor says ${descriptor.disk.size} bytes with sha256 ${descriptor.disk.sha256}`,
        { hint: "The release is inconsistent; nothing was installed." },
      );
    }
    if (kernel) await fetchTo(kernel, IMAGE_FILES.kernel);
    if (initrd) await fetchTo(initrd, IMAGE_FILES.initrd);
    return await installStaged(staging, dir, {
      name: descriptor?.name ?? disk.name.replace(/(\.qcow2)?(\.zst)?$/, ""),
      version: release.version,
      arch: options.arch,
      size: result.outputBytes,
      source: options.source,
      published_sha256: disk.sha256,
      sha256: result.outputSha256,
      key_fingerprint: fingerprint,
      ...(descriptor?.boot
        ? {
          boot: {
            kernel: IMAGE_FILES.kernel,
            ...(initrd ? { initrd: IMAGE_FILES.initrd } : {}),
            ...(descriptor.boot.append !== undefined ? { append: descriptor.boot.append } : {}),
          },
        }
        : {}),
    });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** The release's SHA256SUMS, once its signature verified with `publicKey`. */
async function verifiedSums(
  release: Release,
  publicKey: string,
  options: { signal?: AbortSignal; headers?: Record<string, string> },
): Promise<Map<string, string>> {
  const sumsBytes = await fetchSmall(
    release.sha256sums_url,
    MAX_SHA256SUMS_BYTES,
    "SHA256SUMS",
    options.signal,
    options.headers,
  );
  const sigBytes = await fetchSmall(
    release.sha256sums_sig_url,
    MAX_SIGNATURE_BYTES,
    "SHA256SUMS.sig",
    options.signal,
    options.headers,
  );
  await verifySignature(publicKey, sumsBytes, sigBytes, `SHA256SUMS of release ${release.version}`);
  return parseSha256Sums(new TextDecoder().decode(sumsBytes));
}

/** The release's image descriptor, checked against SHA256SUMS before it is read. */
async function fetchDescriptor(
  file: ReleaseFile,
  release: Release,
  options: ReleasePullOptions,
): Promise<ImageDescriptor> {
  const bytes = await fetchSmall(
    file.url,
    MAX_DESCRIPTOR_BYTES,
    printable(file.name),
    options.signal,
    options.headers,
  );
  const actual = sha256Of(bytes);
  if (actual !== file.sha256) {
    throw new EmuError(
      "checksum_mismatch",
      `Cannot install ${
        printable(file.name)
      }: its sha256 is ${actual}, SHA256SUMS says ${file.sha256}`,
      { hint: "The download was damaged or the file was replaced; nothing was installed." },
    );
  }
  return parseDescriptor(new TextDecoder().decode(bytes), printable(file.name), {
    version: release.version,
    arch: options.arch,
  });
}
