/**
 * `emu list-releases`: the releases in the profile's manifest.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { fetchManifest, installedImage } from "../artifact/pull.ts";
import { hostGuestArch } from "../qemu/host.ts";
import { manifestSource, profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu list-releases`. */
export function registerListReleases(program: Command, io: CliIo): void {
  program
    .command("list-releases")
    .description("list the releases in the image source's manifest")
    .option(
      "--source <manifest>",
      "release manifest URL or path (default: the profile's image.source)",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings);
      const source = manifestSource(profile, options.source, "list releases of");
      const manifest = await fetchManifest(source);
      const arch = hostGuestArch();
      const rows = await Promise.all(manifest.releases.map(async (r) => ({
        version: r.version,
        released_at: r.released_at,
        latest: r.version === manifest.latest_stable,
        artifacts: Object.keys(r.artifacts),
        installed: (await installedImage(settings.layout.images, source, r.version, arch)) !== null,
      })));
      out.json({ source, latest_stable: manifest.latest_stable, releases: rows });
      const lines = ["VERSION     RELEASED              ARTIFACTS"];
      for (const r of rows) {
        const marks = [r.latest ? "latest" : "", r.installed ? "installed" : ""].filter(Boolean)
          .join(", ");
        lines.push(
          `${r.version.padEnd(11)} ${(r.released_at || "-").slice(0, 20).padEnd(21)} ${
            r.artifacts.join(", ")
          }${marks ? `  (${marks})` : ""}`,
        );
      }
      out.result(lines.join("\n"));
    });
}
