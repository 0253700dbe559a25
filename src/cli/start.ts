/**
 * `emu start`: bring the stack up and print where it answers.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { portUrl } from "../vm/record.ts";
import { startInstance, type StartResult } from "../vm/start.ts";
import { formatTimings } from "../vm/timings.ts";
import { healthTimeoutOption, nameOption, portOption, profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { thisInvocation } from "./invocation.ts";
import type { CliIo } from "./io.ts";
import type { Output } from "./output.ts";
import { ProgressReporter } from "./progress.ts";

/** Registers `emu start`. */
export function registerStart(program: Command, io: CliIo): void {
  program
    .command("start")
    .description(
      "start the stack: resume its snapshot (capturing it first if needed), rotate secrets, wait until healthy",
    )
    .addOption(nameOption())
    .addOption(portOption())
    .addOption(healthTimeoutOption())
    .option(
      "--stop-on-failure",
      "stop the VM if it does not become healthy (default: leave it for emu logs)",
    )
    .option("--cold", "boot from scratch instead of resuming the snapshot")
    .option("--no-rotation", "keep the guest's current secrets (faster; prints a warning)")
    .option(
      "--save-secrets",
      "keep this start's secrets in a 0600 file in the instance directory, for `emu run` to pass on",
    )
    .addHelpText(
      "after",
      "\nThe first start captures a snapshot (a cold boot, then the RAM is saved); later starts resume it in\n" +
        "about a second and rotate the profile's secrets. A running, healthy instance is reused.",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile, path } = await profileFor(settings, io.env);
      const progress = new ProgressReporter(io, out.mode);
      const result = await startInstance({
        settings,
        profile,
        profilePath: path,
        name: options.name,
        portOverrides: options.port,
        env: io.env,
        healthTimeoutMs: options.timeout * 1000,
        stopOnFailure: options.stopOnFailure,
        cold: options.cold,
        noRotation: !options.rotation,
        saveSecrets: options.saveSecrets,
        onProgress: (t) => (progress.done(), out.info(t)),
        onDownload: (p) => progress.update(p),
      }).finally(() => progress.done());
      const secretNames = Object.keys(profile.secrets);
      if (!options.rotation && !result.alreadyRunning && secretNames.length > 0) {
        out.warn(
          `--no-rotation: secrets were NOT rotated; ${
            secretNames.join(", ")
          } keep the values baked into the snapshot ` +
            "(public placeholders). Use this instance for local tests only.",
        );
      }
      if (result.fallback) {
        out.warn(
          result.record.boot === "cold"
            ? `no resume: ${result.fallback}`
            : `${result.fallback}; the image's snapshot was resumed instead`,
        );
      }
      report(out, result);
      const emu = thisInvocation(io.env);
      const name = options.name === "default" ? "" : ` --name ${options.name}`;
      out.info(
        `next: ${emu} run${name} -- CMD (the URLs and secrets in its environment) · ${emu} status${name} · ${emu} stop${name}`,
      );
    });
}

const BOOT_WORDS = {
  resume: "resuming its snapshot",
  suspend: "resuming its suspended state",
  cold: "a cold boot",
  checkpoint: "restoring a checkpoint",
} as const;

function report(out: Output, result: StartResult): void {
  const { record } = result;
  out.json({
    ...record,
    already_running: result.alreadyRunning,
    boot_ms: result.bootMs,
    timings: result.timings,
    health: result.health,
    fallback: result.fallback,
  });
  const how = result.alreadyRunning
    ? "already running and healthy"
    : `healthy after ${BOOT_WORDS[record.boot]} in ${(result.bootMs / 1000).toFixed(1)} s`;
  if (!result.alreadyRunning) out.debug(`timings: ${formatTimings(result.timings)}`);
  const lines = [`instance ${record.name} is ${how}`];
  for (const [name, p] of Object.entries(record.ports)) {
    lines.push(`  ${name.padEnd(10)} ${portUrl(p)}`);
  }
  out.result(lines.join("\n"));
}
