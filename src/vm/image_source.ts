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
import { touchImage } from "../artifact/cache.ts";
import { installedImage, pullImage } from "../artifact/pull.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import { normalizeArch } from "../qemu/host.ts";

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
    const arch = normalizeArch(Deno.build.arch) ?? "x86_64";
    const installed = await installedImage(
      settings.layout.images,
      source,
      profile.image.version,
      arch,
    );
    if (installed) {
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
    const { image } = await pullImage({
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
