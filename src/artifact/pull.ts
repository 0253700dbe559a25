/**
 * Pulling an image from a release manifest (SPEC §4, §5): manifest → release → the
 * image artifact for the guest architecture → SHA256SUMS verified against its ECDSA
 * signature → streaming download checked against SHA256SUMS → installed atomically as
 * `images/<id>/{disk.qcow2,image.json}`. Nothing is installed unless every check passed,
 * and an image already installed is never removed before its replacement is complete.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { listImages, readInstalledImage, sha256File } from "./cache.ts";
import { download, type DownloadProgress } from "./download.ts";
import { fetchSmall } from "./fetch_small.ts";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "./image_json.ts";
import {
  imageArtifactName,
  type Manifest,
  MAX_MANIFEST_BYTES,
  parseManifest,
  pickRelease,
  type Release,
} from "./manifest.ts";
import { MAX_SHA256SUMS_BYTES, parseSha256Sums } from "./sha256sums.ts";
import { verifySignature } from "./signature.ts";

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
  /** PEM public key that signs SHA256SUMS. */
  publicKey: string | undefined;
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
    sha256: await sha256File(join(staging, "disk.qcow2")),
    size: fields.size,
    source: fields.source,
    published_sha256: fields.published_sha256,
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

/** The cache directory name of a release: its version and artifact name, filesystem-safe. */
export function imageId(version: string, artifact: string): string {
  return `${version}-${artifact}`.replace(/[^A-Za-z0-9._-]/g, "_");
}

/** Fetches (with the 1 MiB cap) and parses the release manifest at `source`. */
export async function fetchManifest(source: string, signal?: AbortSignal): Promise<Manifest> {
  const bytes = await fetchSmall(source, MAX_MANIFEST_BYTES, "the release manifest", signal);
  return parseManifest(new TextDecoder().decode(bytes), source);
}

/** Resolves, verifies, downloads and installs the image; reuses an installed one. */
export async function pullImage(options: PullOptions): Promise<PullResult> {
  requireKey(options.publicKey);
  const manifest = await fetchManifest(options.source, options.signal);
  return await pullRelease(pickRelease(manifest, options.version), options);
}

function requireKey(publicKey: string | undefined): asserts publicKey is string {
  if (!publicKey) {
    throw new EmuError("signature_invalid", "Cannot verify releases: no public key is configured", {
      hint:
        "Set image.public_key in emu.json to the PEM key the releases are signed with (this emu has no release key compiled in).",
    });
  }
}

/** How {@linkcode pullRelease} fetches and names what it installs. */
export interface ReleaseFetch {
  /** Headers for every request (e.g. a GitHub token and `Accept`). */
  headers?: Record<string, string>;
  /** Cache directory prefix that keeps sources apart (e.g. `github-owner-repo-`). */
  idPrefix?: string;
  /** The published file name behind a URL whose path does not end in it (GitHub API assets). */
  fileNameOf?: (url: string) => string | undefined;
}

/**
 * Installs this architecture's image of `release`: SHA256SUMS verified against its
 * signature with `options.publicKey`, the image against SHA256SUMS.
 */
export async function pullRelease(
  release: Release,
  options: PullOptions & ReleaseFetch,
): Promise<PullResult> {
  const say = options.onMessage ?? (() => {});
  requireKey(options.publicKey);
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
  const id = `${options.idPrefix ?? ""}${imageId(release.version, artifact)}`;
  const dir = join(options.imagesDir, id);
  const installed = await readInstalledImage(dir);
  if (installed && !options.force) return { image: installed, cached: true };

  const sumsBytes = await fetchSmall(
    release.sha256sums_url,
    MAX_SHA256SUMS_BYTES,
    "SHA256SUMS",
    options.signal,
    options.headers,
  );
  const sigBytes = await fetchSmall(
    release.sha256sums_sig_url,
    4096,
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
  say(`pulling ${fileName} (release ${release.version})`);
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
    });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** Finds the installed image for a manifest source and version, if any (no network). */
export async function installedImage(
  imagesDir: string,
  source: string,
  version: string,
  arch: "x86_64" | "aarch64",
): Promise<ImageInfo | null> {
  const wanted = version.replace(/^v/, "");
  const found = (await listImages(imagesDir))
    .map((c) => c.image)
    .filter((i) =>
      i.source === source && i.arch === arch &&
      // "latest" means a release: CI builds (pr-N, run-ID) are picked only by name.
      (version === "latest" ? /^v?\d/.test(i.version) : i.version.replace(/^v/, "") === wanted)
    )
    .sort((a, b) => b.version.localeCompare(a.version, undefined, { numeric: true }));
  return found[0] ?? null;
}
