/**
 * `emu stop`: power the instance off (ACPI, then SIGTERM, then SIGKILL).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { stopInstance } from "../vm/stop.ts";
import { nameOption } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu stop`. */
export function registerStop(program: Command, io: CliIo): void {
  program
    .command("stop")
    .description("stop an instance: graceful power-off, then SIGTERM, then SIGKILL")
    .addOption(nameOption())
    .option("--force", "skip the graceful power-off")
    .addHelpText("after", "\nThe run disk and serial log are kept; `emu reset` drops them.")
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const result = await stopInstance({
        settings,
        name: options.name,
        force: options.force,
        onProgress: (t) => out.info(t),
      });
      out.json({
        name: options.name,
        was_running: result.wasRunning,
        method: result.method,
        ms: result.ms,
      });
      const text = result.method === "not-started"
        ? `instance ${options.name} does not exist; nothing to stop`
        : result.wasRunning
        ? `instance ${options.name} stopped (${describe(result.method)}, ${
          (result.ms / 1000).toFixed(1)
        } s)`
        : `instance ${options.name} was not running`;
      out.result(text);
    });
}

function describe(method: string): string {
  return {
    powerdown: "guest powered off",
    sigterm: "QEMU terminated",
    sigkill: "QEMU killed",
  }[method] ?? method;
}
