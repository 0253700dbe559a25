/**
 * `emu capture`: cold boot the profile's image, wait until healthy, and save a RAM
 * snapshot that `emu start` resumes.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { probeHost } from "../qemu/probe.ts";
import { captureSnapshot } from "../vm/capture.ts";
import type { SnapshotMeta } from "../vm/snapshot.ts";
import { resolveImage } from "../vm/image_source.ts";
import { healthTimeoutOption, profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

const MIB = 1024 * 1024;

/** Registers `emu capture`. */
export function registerCapture(program: Command, io: CliIo): void {
  program
    .command("capture")
    .description(
      "capture the RAM snapshot that `emu start` resumes (cold boot, wait healthy, save)",
    )
    .option("--force", "capture again even if a good snapshot exists")
    .option(
      "--compress",
      "keep the guest's RAM zstd-compressed (smaller; the first resume decompresses it once)",
    )
    .addOption(healthTimeoutOption())
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      const image = await resolveImage(profile, settings, {
        pull: true,
        onMessage: (t) => out.info(t),
      });
      const { result: probe } = await probeHost({
        cachePath: settings.layout.probe,
        env: io.env,
        guestArch: image.arch,
      });
      const snapshot = await captureSnapshot({
        settings,
        profile,
        image,
        probe,
        force: options.force,
        compress: options.compress,
        healthTimeoutMs: options.timeout * 1000,
        onProgress: (t) => out.info(t),
      });
      const { meta } = snapshot;
      out.json({ dir: snapshot.dir, reused: snapshot.reused, ...meta });
      out.result(
        snapshot.reused
          ? `snapshot ${meta.fingerprint} is up to date (${snapshot.dir}); --force captures again`
          : `snapshot ${meta.fingerprint} captured: ${ramSummary(meta)}, device state ${
            (meta.state.allocated_bytes / 1024).toFixed(0)
          } KiB, saved in ${(meta.capture_ms / 1000).toFixed(1)} s`,
      );
    });
}

/** "RAM 1024 MiB (353 MiB in use[, 68 MiB as zstd])". */
function ramSummary(meta: SnapshotMeta): string {
  const ram = meta.ram;
  if (ram === undefined) return `state ${(meta.state.logical_bytes / MIB).toFixed(0)} MiB`;
  const zstd = ram.compressed_bytes === undefined
    ? ""
    : `, ${(ram.compressed_bytes / MIB).toFixed(0)} MiB as zstd`;
  return `RAM ${(ram.logical_bytes / MIB).toFixed(0)} MiB (${
    (ram.allocated_bytes / MIB).toFixed(0)
  } MiB in use${zstd})`;
}
