/**
 * The image a profile points at. Local image directories (with `image.json`, as
 * `deno task fixtures` and `emu image build` write them) are used in place; a local
 * qcow2 file is imported into the cache; manifests and URLs go through the artifact
 * pipeline (`emu pull`, or `emu start`, which pulls what is missing).
 *
 * @module
 */
import { join } from "node:path";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "../artifact/image_json.ts";
import { installedImage } from "../artifact/cache.ts";
import { isUrl } from "../artifact/fetch_small.ts";
import {
  checkBeforeUse,
  DEFAULT_KEEP,
  evictImages,
  listImages,
  touchImage,
} from "../artifact/cache.ts";
import type { DownloadProgress } from "../artifact/download.ts";
import { isGithubSource, isPlainImageSource } from "../artifact/source_kind.ts";
import { builtInPublicKey, DEMO_TAG_PREFIX } from "../artifact/release_config.ts";
import { localDemoImage } from "../config/default_profile.ts";
import { keyFingerprint } from "../artifact/signature.ts";
import type { PullResult } from "../artifact/install.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import { hostGuestArch } from "../qemu/host.ts";
import { listInstances } from "./instance.ts";

/** Whether an image source is a release manifest (a URL, or a local `.json` file). */
export function isManifestSource(source: string): boolean {
  return !isPlainImageSource(source) && (isUrl(source) || source.endsWith(".json"));
}

/**
 * Whether `emu pull` can fetch the source: a release manifest, a plain qcow2 file/URL, or
 * `github:owner/repo`.
 */
export function isPullableSource(source: string): boolean {
  return isPlainImageSource(source) || isManifestSource(source) || isGithubSource(source);
}

/** Options of {@linkcode resolveImage}. */
export interface ResolveOptions {
  /** Pull from the manifest when the release is not installed yet (`emu start`). */
  pull?: boolean;
  onMessage?: (text: string) => void;
  /** Download progress of a pull. */
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

/**
 * Resolves the profile's image to a local, validated image: a local image directory in
 * place, or a release from a manifest as installed by `emu pull` (pulled now with
 * `pull`).
 */
export async function resolveImage(
  profile: Profile,
  settings: Settings,
  options: ResolveOptions = {},
): Promise<ImageInfo> {
  const source = profile.image.source;
  if (isPlainImageSource(source)) {
    // A URL is found by its source without asking the network; a local file by its
    // path, size and mtime (pullPlainImage), so an edited file is imported again.
    if (/^https?:/.test(source)) {
      const installed = (await listImages(settings.layout.images)).map((c) => c.image)
        .find((i) => i.source === source);
      if (installed) {
        await checkBeforeUse(installed);
        await touchImage(installed);
        return installed;
      }
      if (!options.pull) {
        throw new EmuError("image_unavailable", `Cannot use ${source}: it is not pulled yet`, {
          hint: "Run `emu pull` (or `emu start`, which pulls what is missing).",
        });
      }
    }
    const { image, cached } = await pullSource(settings, {
      source,
      version: profile.image.version,
      signal: options.signal,
      onMessage: options.onMessage,
      onProgress: options.onProgress,
      warn: options.onMessage,
    });
    if (cached) {
      await checkBeforeUse(image);
      await touchImage(image);
    }
    return image;
  }
  if (isManifestSource(source) || isGithubSource(source)) {
    const arch = hostGuestArch();
    const publicKey = profile.image.public_key ?? builtInPublicKey();
    const installed = publicKey === null ? null : await installedImage(
      settings.layout.images,
      source,
      profile.image.version,
      arch,
      keyFingerprint(publicKey),
    );
    if (installed) {
      await checkBeforeUse(installed);
      await touchImage(installed);
      return installed;
    }
    if (!options.pull) {
      throw new EmuError(
        "image_unavailable",
        `Cannot use release ${profile.image.version} of ${source}: it is not pulled yet`,
        {
          hint: "Run `emu pull` (or `emu start`, which pulls what is missing).",
        },
      );
    }
    try {
      const { image } = await pullSource(settings, {
        source,
        version: profile.image.version,
        publicKey: profile.image.public_key,
        signal: options.signal,
        onMessage: options.onMessage,
        onProgress: options.onProgress,
        warn: options.onMessage,
      });
      return image;
    } catch (err) {
      const offline = err instanceof EmuError &&
        (err.code === "download_failed" || err.code === "release_not_found");
      if (!isBuiltInDemo(profile, settings) || !offline) throw err;
      throw demoUnavailable(
        settings,
        `its release could not be pulled from ${source}: ${err.message}`,
      );
    }
  }
  const info = await Deno.stat(source).catch(() => null);
  if (info?.isDirectory) {
    const text = await Deno.readTextFile(join(source, IMAGE_JSON)).catch(() => null);
    if (text === null) {
      throw new EmuError(
        "image_unavailable",
        `Cannot use image directory ${source}: it has no ${IMAGE_JSON}`,
        {
          hint:
            "Point image.source at a directory written by `deno task fixtures` or `emu image build`.",
        },
      );
    }
    const image = parseImageJson(text, source);
    for (const file of [image.disk, image.boot?.kernel, image.boot?.initrd]) {
      if (file !== undefined && !(await Deno.stat(file).then((s) => s.isFile, () => false))) {
        throw new EmuError("image_unavailable", `Cannot use image ${source}: ${file} is missing`, {
          hint: "Rebuild the image (for the fixtures: deno task fixtures).",
        });
      }
    }
    return image;
  }
  if (info === null && isBuiltInDemo(profile, settings)) {
    throw demoUnavailable(settings, "this emu (a source checkout) knows no published demo release");
  }
  throw new EmuError(
    "image_unavailable",
    `Cannot use image source ${source}: emu uses release manifests, github:OWNER/REPO releases, qcow2 files or URLs (.qcow2, .qcow2.zst) and local image directories`,
    {
      hint:
        "Point image.source at one of those (deno task fixtures writes an image directory to fixtures/out/fast).",
    },
  );
}

/** Whether `profile` is the built-in demo profile (no emu.json): its errors name both ways. */
function isBuiltInDemo(profile: Profile, settings: Settings): boolean {
  return profile.name === "demo" &&
    (profile.image.source === localDemoImage(settings.home) ||
      profile.image.source.endsWith(`#${DEMO_TAG_PREFIX}`));
}

function demoUnavailable(settings: Settings, why: string): EmuError {
  return new EmuError(
    "image_unavailable",
    `Cannot start the demo stack: there is no local build of it (${
      localDemoImage(settings.home)
    }) and ${why}`,
    {
      hint:
        "Build it here with `deno task demo` in emu's source checkout (Debian, as root; a few minutes), or connect to the network so a released emu can pull the signed demo release from GitHub. Or use a profile of your own with --config.",
    },
  );
}

/** What to pull, and how to report it. */
export interface PullRequest {
  source: string;
  version: string;
  publicKey?: string;
  force?: boolean;
  signal?: AbortSignal;
  onMessage?: (text: string) => void;
  onProgress?: (progress: DownloadProgress) => void;
  /** Eviction warnings. */
  warn?: (text: string) => void;
  /** For GitHub sources: token and API base (default: this process's environment). */
  env?: Record<string, string | undefined>;
  /** GitHub sources: the image of this pull request's CI (`--pr`) or of this run (`--run`). */
  pr?: number;
  run?: number;
}

/**
 * Pulls a release (manifest) or a plain qcow2 source into the image cache, then keeps
 * the cache at its size (two images by default, least recently used evicted with a
 * warning), never evicting an image a live instance uses.
 */
export async function pullSource(settings: Settings, request: PullRequest): Promise<PullResult> {
  const common = {
    releasesSeen: settings.layout.releases,
    arch: hostGuestArch(),
    imagesDir: settings.layout.images,
    downloadsDir: settings.layout.downloads,
    force: request.force,
    signal: request.signal,
    onMessage: request.onMessage,
    onProgress: request.onProgress,
  };
  // The profile's key, else the one the release workflow compiled in.
  const publicKey = request.publicKey ?? builtInPublicKey() ?? undefined;
  // The code of each kind of pull is loaded only when it is needed: a start that finds
  // its image installed loads none of it.
  let result: PullResult;
  if (isPlainImageSource(request.source)) {
    const { pullPlainImage } = await import("../artifact/plain.ts");
    result = await pullPlainImage({ source: request.source, ...common });
  } else if (isGithubSource(request.source)) {
    const { pullGithubImage } = await import("../artifact/github_pull.ts");
    result = await pullGithubImage({
      source: request.source,
      version: request.version,
      publicKey,
      env: request.env ?? Deno.env.toObject(),
      pr: request.pr,
      run: request.run,
      ...common,
    });
  } else {
    const { pullImage } = await import("../artifact/pull.ts");
    result = await pullImage({
      source: request.source,
      version: request.version,
      publicKey,
      ...common,
    });
  }
  if (!result.cached) {
    const inUse = new Set<string>();
    for (const instance of await listInstances(settings)) {
      if (instance.alive && instance.record) inUse.add(instance.record.image.dir);
    }
    inUse.add(result.image.dir);
    for (const id of await evictImages(settings.layout.images, DEFAULT_KEEP, inUse)) {
      request.warn?.(
        `warning: removed image ${id} from the cache (it keeps the ${DEFAULT_KEEP} most recently used; emu images ls)`,
      );
    }
  }
  return result;
}
