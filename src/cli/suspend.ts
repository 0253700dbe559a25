/**
 * `emu suspend`: save the instance's RAM and disk state so the next start resumes it.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { suspendInstance } from "../vm/suspend.ts";
import { nameOption, profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu suspend`. */
export function registerSuspend(program: Command, io: CliIo): void {
  program
    .command("suspend")
    .description(
      "save this instance's RAM and disk state; the next start resumes it (data and secrets kept)",
    )
    .addOption(nameOption())
    .addHelpText("after", "\n`emu reset` drops the saved state: the next start is pristine again.")
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      const { meta, ms } = await suspendInstance({
        settings,
        profile,
        name: options.name,
        env: io.env,
        onProgress: (t) => out.info(t),
      });
      out.json({
        name: options.name,
        state_bytes: meta.state.logical_bytes,
        allocated_bytes: meta.state.allocated_bytes,
        ms,
      });
      out.result(
        `instance ${options.name} suspended in ${
          (ms / 1000).toFixed(1)
        } s; \`emu start\` resumes it`,
      );
    });
}
