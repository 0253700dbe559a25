/**
 * `emu list-releases`: the releases of the profile's image source (a manifest, or a
 * GitHub repository's signed releases).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { isGithubSource } from "../artifact/source_kind.ts";
import { installedImage } from "../artifact/cache.ts";
import { builtInPublicKey } from "../artifact/release_config.ts";
import { keyFingerprint } from "../artifact/signature.ts";
import { fetchSignedManifest } from "../artifact/signed_manifest.ts";
import { hostGuestArch } from "../qemu/host.ts";
import { profileFor, releaseSource } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu list-releases`. */
export function registerListReleases(program: Command, io: CliIo): void {
  program
    .command("list-releases")
    .description("list the releases of the image source (a manifest or github:OWNER/REPO)")
    .option(
      "--source <source>",
      "release manifest URL or path, or github:OWNER/REPO (default: the profile's image.source)",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      const source = releaseSource(profile, options.source);
      const publicKey = profile.image.public_key ?? builtInPublicKey();
      let manifest;
      if (isGithubSource(source)) {
        const env = io.env;
        const { fetchGithubReleases, githubApi, githubToken, parseGithubSource } = await import(
          "../artifact/github.ts"
        );
        manifest = await fetchGithubReleases(parseGithubSource(source), {
          api: githubApi(env),
          token: await githubToken(env),
        });
      } else {
        manifest = await fetchSignedManifest(source, publicKey);
      }
      const fingerprint = publicKey ? keyFingerprint(publicKey) : null;
      const arch = hostGuestArch();
      const rows = await Promise.all(manifest.releases.map(async (r) => ({
        version: r.version,
        released_at: r.released_at,
        latest: r.version === manifest.latest_stable,
        artifacts: Object.keys(r.artifacts),
        installed:
          (await installedImage(settings.layout.images, source, r.version, arch, fingerprint)) !==
            null,
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
