/**
 * `emu images ls|rm|prune|verify`: the local image cache.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import {
  DEFAULT_KEEP,
  imagesToPrune,
  listImages,
  removeImage,
  verifyImage,
} from "../artifact/cache.ts";
import { EmuError } from "../errors.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { ExitStatus } from "./exit.ts";
import type { CliIo } from "./io.ts";

const MIB = 1024 * 1024;

function parseKeep(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new EmuError("usage", `Cannot use --keep ${value}: expected a whole number`);
  }
  return n;
}

/** Registers `emu images`. */
export function registerImages(program: Command, io: CliIo): void {
  const images = program.command("images").description(
    "the local image cache: ls, rm, prune, verify",
  );
  images
    .command("ls", { isDefault: true })
    .description("list installed images, most recently used first")
    .action(async (_options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const list = await listImages(settings.layout.images);
      out.json({
        images: list.map((c) => ({ id: c.id, last_used: c.lastUsed.toISOString(), ...c.image })),
      });
      out.result(
        list.length === 0 ? "no images (emu pull installs one)" : [
          "ID                          VERSION     SIZE      LAST USED",
          ...list.map((c) =>
            `${c.id.padEnd(27)} ${c.image.version.padEnd(11)} ${
              `${(c.image.size / MIB).toFixed(0)} MiB`.padEnd(9)
            } ${c.lastUsed.toISOString()}`
          ),
        ].join("\n"),
      );
    });
  images
    .command("rm")
    .description("remove an installed image")
    .argument("<id>", "image id (see emu images ls)")
    .action(async (id, _options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      await removeImage(settings.layout.images, id);
      out.json({ removed: [id] });
      out.result(`removed image ${id}`);
    });
  images
    .command("prune")
    .description(`remove all but the most recently used images (default: keep ${DEFAULT_KEEP})`)
    .option("--keep <n>", "how many images to keep", parseKeep, DEFAULT_KEEP)
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const victims = imagesToPrune(await listImages(settings.layout.images), options.keep);
      for (const v of victims) {
        out.warn(`removing image ${v.id} (last used ${v.lastUsed.toISOString()})`);
        await removeImage(settings.layout.images, v.id);
      }
      out.json({ removed: victims.map((v) => v.id) });
      out.result(
        victims.length
          ? `removed ${victims.length} image${victims.length === 1 ? "" : "s"}`
          : "nothing to prune",
      );
    });
  images
    .command("verify")
    .description("re-read installed images and check size and sha256 against image.json")
    .argument("[id]", "only this image")
    .action(async (id, _options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const list = (await listImages(settings.layout.images)).filter((c) =>
        id === undefined || c.id === id
      );
      if (id !== undefined && list.length === 0) {
        throw new EmuError("image_unavailable", `Cannot verify image ${id}: it is not installed`);
      }
      const results = [];
      for (const c of list) results.push({ id: c.id, ...(await verifyImage(c.image)) });
      out.json({ images: results });
      out.result(
        results.map((r) => `${r.ok ? "ok  " : "BAD "} ${r.id}${r.problem ? `: ${r.problem}` : ""}`)
          .join("\n") || "no images",
      );
      if (results.some((r) => !r.ok)) throw new ExitStatus(1);
    });
}
