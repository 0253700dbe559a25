/**
 * The image a profile points at. Local image directories (with `image.json`, as
 * `deno task fixtures` and `emu image build` write them) are used in place; other
 * sources need the artifact pipeline (`emu pull`).
 *
 * @module
 */
import { join } from "node:path";
import { IMAGE_JSON, type ImageInfo, parseImageJson } from "../artifact/image_json.ts";
import type { Profile } from "../config/profile.ts";
import { EmuError } from "../errors.ts";

/** Resolves the profile's image to a local, validated image. */
export async function resolveImage(profile: Profile): Promise<ImageInfo> {
  const source = profile.image.source;
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
    `Cannot use image source ${source}: emu can start local image directories only; pulling manifests, qcow2 files and GitHub releases arrives with \`emu pull\``,
    {
      hint: "Use a local image directory (deno task fixtures writes one to fixtures/out/fast).",
    },
  );
}
