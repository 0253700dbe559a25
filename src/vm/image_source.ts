/**
 * The image a profile points at. Local image directories (with `image.json`, as
 * `deno task fixtures` and `emu image build` write them) are used in place; other
 * sources need the artifact pipeline (`emu pull`).
 *
 * @module
 */
import { join } from "node:path";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "../artifact/image_json.ts";
import { isUrl } from "../artifact/fetch_small.ts";
import { checkBeforeUse, DEFAULT_KEEP, evictImages, touchImage } from "../artifact/cache.ts";
import { installedImage, pullImage } from "../artifact/pull.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import { hostGuestArch } from "../qemu/host.ts";
import { listInstances } from "./instance.ts";

/** Whether an image source is a release manifest (a URL, or a local `.json` file). */
export function isManifestSource(source: string): boolean {
  return isUrl(source) || source.endsWith(".json");
}

/** Options of {@linkcode resolveImage}. */
export interface ResolveOptions {
  /** Pull from the manifest when the release is not installed yet (`emu start`). */
  pull?: boolean;
  onMessage?: (text: string) => void;
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
  if (isManifestSource(source)) {
    const arch = hostGuestArch();
    const installed = await installedImage(
      settings.layout.images,
      source,
      profile.image.version,
      arch,
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
    const { image } = await pullAndEvict(settings, options.onMessage, {
      source,
      version: profile.image.version,
      arch,
      publicKey: profile.image.public_key,
      imagesDir: settings.layout.images,
      downloadsDir: settings.layout.downloads,
      signal: options.signal,
      onMessage: options.onMessage,
    });
    return image;
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
  if (profile.name === "demo" && info === null) {
    throw new EmuError(
      "image_unavailable",
      `Cannot start the demo stack: its image is not built yet (${source})`,
      {
        hint:
          "Build it with `deno task demo` (not available yet), or use a profile of your own with --config.",
      },
    );
  }
  throw new EmuError(
    "image_unavailable",
    `Cannot use image source ${source}: emu uses release manifests and local image directories; plain qcow2 files and GitHub releases are not supported yet`,
    {
      hint:
        "Point image.source at a release manifest or a local image directory (deno task fixtures writes one to fixtures/out/fast).",
    },
  );
}

/**
 * Pulls, then keeps the cache at its size (SPEC §5: two images by default, least
 * recently used evicted with a warning), never evicting an image a live instance uses.
 */
export async function pullAndEvict(
  settings: Settings,
  warn: ((text: string) => void) | undefined,
  options: Parameters<typeof pullImage>[0],
): Promise<Awaited<ReturnType<typeof pullImage>>> {
  const result = await pullImage(options);
  if (!result.cached) {
    const inUse = new Set<string>();
    for (const instance of await listInstances(settings)) {
      if (instance.alive && instance.record) inUse.add(instance.record.image.dir);
    }
    inUse.add(result.image.dir);
    for (const id of await evictImages(settings.layout.images, DEFAULT_KEEP, inUse)) {
      warn?.(
        `warning: removed image ${id} from the cache (it keeps the ${DEFAULT_KEEP} most recently used; emu images ls)`,
      );
    }
  }
  return result;
}
