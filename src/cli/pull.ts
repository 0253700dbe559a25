/**
 * `emu pull`: fetch, verify and install the profile's image release, then capture its
 * snapshot (unless `--skip-snapshot`).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { probeHost } from "../qemu/probe.ts";
import { captureSnapshot } from "../vm/capture.ts";
import { isGithubSource } from "../artifact/source_kind.ts";
import { EmuError } from "../errors.ts";
import { pullSource } from "../vm/image_source.ts";
import { positiveInt, profileFor, pullableSource } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";
import { ProgressReporter } from "./progress.ts";

const MIB = 1024 * 1024;

/** Registers `emu pull`. */
export function registerPull(program: Command, io: CliIo): void {
  program
    .command("pull")
    .description("download, verify and install the image release, then capture its snapshot")
    .option("--version <version>", "release to pull (default: the profile's image.version)")
    .option(
      "--source <source>",
      "release manifest, qcow2 file or URL, or github:OWNER/REPO (default: the profile's image.source)",
    )
    .option(
      "--pr <number>",
      "github: sources: the image built by this pull request's CI",
      positiveInt("--pr"),
    )
    .option(
      "--run <id>",
      "github: sources: the image artifact of this Actions run",
      positiveInt("--run"),
    )
    .option("--force", "download again even if the release is installed")
    .option("--skip-snapshot", "do not capture the snapshot after pulling")
    .addHelpText(
      "after",
      "\nSHA256SUMS must verify against image.public_key (ECDSA P-256) and the download against\n" +
        "SHA256SUMS; a qcow2 URL against URL#sha256=<hex> or URL.sha256. Nothing is installed\n" +
        "otherwise. An interrupted pull continues where it stopped.",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      const source = pullableSource(profile, options.source);
      if (options.pr !== undefined && options.run !== undefined) {
        throw new EmuError("usage", "Cannot use --pr and --run together", {
          hint: "--pr picks the newest successful run of the pull request; --run names one.",
        });
      }
      if ((options.pr ?? options.run) !== undefined && !isGithubSource(source)) {
        throw new EmuError(
          "usage",
          `Cannot use --pr or --run with ${source}: they need a github:OWNER/REPO source`,
        );
      }
      const progress = new ProgressReporter(io, out.mode);
      const result = await pullSource(settings, {
        source,
        version: options.version ?? profile.image.version,
        publicKey: profile.image.public_key,
        force: options.force,
        onMessage: (t) => out.info(t),
        onProgress: (p) => progress.update(p),
        warn: (t) => (progress.done(), out.warn(t.replace(/^warning: /, ""))),
        env: io.env,
        pr: options.pr,
        run: options.run,
      }).finally(() => progress.done());
      const { image } = result;
      out.info(
        result.cached
          ? `${image.version} is already installed`
          : `installed ${image.name} ${image.version} (${(image.size / MIB).toFixed(0)} MiB)`,
      );
      let snapshot = null;
      if (!options.skipSnapshot) {
        const { result: probe } = await probeHost({
          cachePath: settings.layout.probe,
          env: io.env,
          guestArch: image.arch,
        });
        snapshot = await captureSnapshot({
          settings,
          profile,
          image,
          probe,
          onProgress: (t) => out.info(t),
        });
      }
      out.json({
        image,
        cached: result.cached,
        snapshot: snapshot ? { dir: snapshot.dir, ...snapshot.meta } : null,
      });
      out.result(
        `image ${image.name} ${image.version} at ${image.dir}${
          snapshot ? `; snapshot ${snapshot.meta.fingerprint}` : ""
        }`,
      );
    });
}
