/**
 * Pulling an image from a release manifest (SPEC §4, §5): manifest → release → the
 * image artifact for the guest architecture → SHA256SUMS verified against its ECDSA
 * signature → streaming download checked against SHA256SUMS → installed atomically as
 * `images/<id>/{disk.qcow2,image.json}`. Nothing is installed unless every check passed,
 * and an image already installed is never removed before its replacement is complete.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { listImages, readInstalledImage, sha256File } from "./cache.ts";
import { download, type DownloadProgress } from "./download.ts";
import { fetchSmall } from "./fetch_small.ts";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "./image_json.ts";
import { imageArtifactName, pickRelease, printable, type Release } from "./manifest.ts";
import { checkNotRollback, rememberRelease } from "./release_memory.ts";
import { MAX_SHA256SUMS_BYTES, parseSha256Sums } from "./sha256sums.ts";
import { fetchSignedManifest, MAX_SIGNATURE_BYTES, requireKey } from "./signed_manifest.ts";
import { keyFingerprint, verifySignature } from "./signature.ts";
import { compareVersions, parseVersion } from "./versions.ts";

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

/** Options of {@linkcode pullImage}. */
export interface PullOptions extends InstallTarget {
  /** Manifest URL (https, http, file) or local path. */
  source: string;
  version: string;
  /** PEM public key that signs the manifest and SHA256SUMS. */
  publicKey: string | undefined;
  /** The file that remembers each source's newest release (rollback protection). */
  releasesSeen: string;
}

/** What {@linkcode pullImage} did. */
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
    disk: "disk.qcow2",
    sha256: fields.sha256 ?? await sha256File(join(staging, "disk.qcow2")),
    size: fields.size,
    source: fields.source,
    published_sha256: fields.published_sha256,
    ...(fields.key_fingerprint ? { key_fingerprint: fields.key_fingerprint } : {}),
    pulled_at: new Date().toISOString(),
  };
  await Deno.writeTextFile(join(staging, IMAGE_JSON), `${JSON.stringify(image, null, 2)}\n`);
  const old = `${dir}.old-${crypto.randomUUID().slice(0, 8)}`;
  const hadOld = await Deno.rename(dir, old).then(() => true, () => false);
  await Deno.rename(staging, dir);
  if (hadOld) await Deno.remove(old, { recursive: true }).catch(() => {});
  const disk = await Deno.stat(join(dir, "disk.qcow2"));
  await Deno.writeTextFile(join(dir, "verified"), `${disk.size}:${disk.mtime?.getTime() ?? 0}`);
  await Deno.writeTextFile(join(dir, "last_used"), new Date().toISOString());
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
 * import { imageCacheId } from "./pull.ts";
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

/**
 * Resolves, verifies, downloads and installs the image; reuses an installed one. The
 * manifest's signature is checked before it is read, and a `latest` older than the
 * newest this source has offered before is refused (`rollback_refused`).
 */
export async function pullImage(options: PullOptions): Promise<PullResult> {
  requireKey(options.publicKey);
  const manifest = await fetchSignedManifest(options.source, options.publicKey, options.signal);
  await checkNotRollback(options.releasesSeen, options.source, manifest.latest_stable, {
    named: options.version !== "latest",
    flag: "--version",
  });
  await rememberRelease(options.releasesSeen, options.source, manifest.latest_stable);
  return await pullRelease(pickRelease(manifest, options.version), options);
}

/** How {@linkcode pullRelease} fetches and names what it installs. */
export interface ReleaseFetch {
  /** Headers for every request (e.g. a GitHub token and `Accept`). */
  headers?: Record<string, string>;
  /** What names the source in the cache key, when `source` alone does not (a GitHub API base). */
  sourceIdentity?: string;
  /** The published file name behind a URL whose path does not end in it (GitHub API assets). */
  fileNameOf?: (url: string) => string | undefined;
}

/**
 * Installs this architecture's image of `release`: SHA256SUMS verified against its
 * signature with `options.publicKey`, the image against SHA256SUMS. An installed copy is
 * reused only when its source, key and published sha256 match the verified SHA256SUMS.
 */
export async function pullRelease(
  release: Release,
  options: Omit<PullOptions, "releasesSeen"> & ReleaseFetch,
): Promise<PullResult> {
  const say = options.onMessage ?? (() => {});
  requireKey(options.publicKey);
  const fingerprint = keyFingerprint(options.publicKey);
  const artifact = imageArtifactName(options.arch);
  const url = release.artifacts[artifact];
  if (url === undefined) {
    throw new EmuError(
      "release_not_found",
      `Cannot pull release ${release.version}: it has no ${artifact} (it has ${
        Object.keys(release.artifacts).join(", ") || "nothing"
      })`,
      {
        hint: "This release was not built for this architecture; pick another version.",
      },
    );
  }
  const id = imageCacheId(
    options.sourceIdentity ?? options.source,
    fingerprint,
    release.version,
    artifact,
  );
  const dir = join(options.imagesDir, id);

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
  await verifySignature(
    options.publicKey,
    sumsBytes,
    sigBytes,
    `SHA256SUMS of release ${release.version}`,
  );
  const sums = parseSha256Sums(new TextDecoder().decode(sumsBytes));
  const fileName = options.fileNameOf?.(url) ??
    decodeURIComponent(new URL(url).pathname.split("/").pop()!);
  const sha256 = sums.get(fileName);
  if (sha256 === undefined) {
    throw new EmuError(
      "checksums_invalid",
      `Cannot pull ${fileName}: SHA256SUMS of release ${release.version} does not list it`,
      {
        hint: "The release is incomplete; nothing was installed.",
      },
    );
  }
  const installed = await readInstalledImage(dir).catch(() => null);
  if (installed && !options.force) {
    if (
      installed.source === options.source && installed.key_fingerprint === fingerprint &&
      installed.published_sha256 === sha256
    ) return { image: installed, cached: true };
    say(
      `the cached copy of ${release.version} does not match its signed SHA256SUMS: pulling it again`,
    );
  }
  say(`pulling ${printable(fileName)} (release ${release.version})`);
  const staging = join(options.imagesDir, `.pull-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const result = await download({
      url,
      dest: join(staging, "disk.qcow2"),
      partDir: options.downloadsDir,
      partId: sha256,
      sha256,
      zstd: fileName.endsWith(".zst"),
      signal: options.signal,
      onProgress: options.onProgress,
      headers: options.headers,
    });
    return await installStaged(staging, dir, {
      name: fileName.replace(/(\.qcow2)?(\.zst)?$/, ""),
      version: release.version,
      arch: options.arch,
      size: result.outputBytes,
      source: options.source,
      published_sha256: sha256,
      sha256: result.outputSha256,
      key_fingerprint: fingerprint,
    });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
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
