/**
 * `emu upgrade [--check] [--to V] [--dry-run]`: replace this emu with a verified release
 * (docs/architecture.md, «Distribution and self-update»). `--check` exits 10 when an update is
 * available.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { releaseConfig } from "../artifact/release_config.ts";
import { targetTriple } from "../update/target.ts";
import { VERSION } from "../version.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { ExitStatus } from "./exit.ts";
import type { CliIo } from "./io.ts";
import { ProgressReporter } from "./progress.ts";

/** `--check`'s exit code when a newer release exists. */
export const UPDATE_AVAILABLE_EXIT = 10;

/** Registers `emu upgrade`. */
export function registerUpgrade(program: Command, io: CliIo): void {
  program
    .command("upgrade")
    .description("replace this emu with the latest (or a chosen) verified release")
    .option(
      "--check",
      `only check: exit 0 when up to date, ${UPDATE_AVAILABLE_EXIT} when an update exists`,
    )
    .option("--to <version>", "install this release (also an older one)")
    .option("--dry-run", "download and verify the release, change nothing")
    .addHelpText(
      "after",
      "\nThe release manifest's SHA256SUMS must verify against emu's release key and the archive\n" +
        "against SHA256SUMS. The new binary must run (`--version`) before it replaces this one;\n" +
        "the old one is kept as <emu>.previous and put back on any failure.\n" +
        "Homebrew installs upgrade with `brew upgrade emu`.",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const config = await releaseConfig(io.env);
      if (config.manifest === null || config.publicKey === null) {
        throw new EmuError(
          "upgrade_refused",
          "Cannot upgrade: this emu was not built by the release workflow, so it does not know where its releases are",
          {
            hint:
              "Set EMU_RELEASE_MANIFEST (URL or path) and EMU_RELEASE_PUBLIC_KEY (PEM text or file), or reinstall with install.sh.",
          },
        );
      }
      const target = targetTriple(Deno.build.os, Deno.build.arch);
      if (target === null) {
        throw new EmuError(
          "upgrade_refused",
          `Cannot upgrade: emu is not released for ${Deno.build.os} ${Deno.build.arch}`,
        );
      }
      const progress = new ProgressReporter(io, out.mode);
      const { upgrade } = await import("../update/upgrade.ts");
      const result = await upgrade({
        manifest: config.manifest,
        publicKey: config.publicKey,
        currentVersion: VERSION,
        target,
        // EMU_UPGRADE_EXECUTABLE names another binary to replace (packaging, tests).
        executable: io.env.EMU_UPGRADE_EXECUTABLE || Deno.execPath(),
        to: options.to,
        check: options.check,
        dryRun: options.dryRun,
        downloadsDir: settings.layout.downloads,
        releasesSeen: settings.layout.releases,
        onMessage: (t) => (progress.done(), out.info(t)),
        onProgress: (p) => progress.update(p),
      }).finally(() => progress.done());
      out.json(result);
      const lines = {
        "up-to-date": `emu ${result.from} is up to date (latest release: ${result.to})`,
        available: `emu ${result.to} is available (this is ${result.from}); run \`emu upgrade\``,
        verified: `dry run: emu ${result.to} downloaded and verified; nothing was changed`,
        upgraded: `upgraded ${result.executable} from ${result.from} to ${result.to}`,
      } as const;
      out.result(lines[result.status]);
      if (result.status === "available") throw new ExitStatus(UPDATE_AVAILABLE_EXIT);
    });
}
