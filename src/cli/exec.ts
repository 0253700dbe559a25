/**
 * `emu exec -- CMD…`: run a command in the guest through the guest agent; its output and
 * exit code come back as if it ran here.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { QgaClient } from "../protocol/mod.ts";
import { findInstance } from "../vm/instance.ts";
import { nameOption, parseSeconds } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { ExitStatus } from "./exit.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu exec`. */
export function registerExec(program: Command, io: CliIo): void {
  program
    .command("exec")
    .description("run a command in the guest and pass its output and exit code through")
    .argument("<command...>", "command and arguments, after --")
    .addOption(nameOption())
    .option("--timeout <seconds>", "give up after this long", parseSeconds, 300)
    .addHelpText("after", "\nExample: emu exec -- sh -c 'ls /data; exit 3'   (exits 3)")
    .action(async (command, options, cmd) => {
      const { settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const found = await findInstance(settings, options.name);
      if (!found.alive) {
        throw new EmuError(
          "instance_not_running",
          `Cannot run a command in instance ${options.name}: it is not running`,
          {
            hint: "Start it with `emu start`.",
          },
        );
      }
      // The agent answers a sync in well under a second when the host is idle; on a host
      // busy with other guests it took more than 10 s once (a CI run), so it gets 30 s
      // before a dead agent is reported. --timeout bounds the wait too.
      const syncMs = Math.min(30_000, options.timeout * 1000);
      await using qga = await QgaClient.connect(found.paths.qgaSocket, { timeoutMs: syncMs })
        .catch((err) => {
          if (!(err instanceof EmuError) || err.code !== "protocol_timeout") throw err;
          throw new EmuError(
            "protocol_timeout",
            `Cannot run ${
              command[0]
            } in instance ${options.name}: the guest agent (qemu-ga) did not answer within ${
              (syncMs / 1000).toFixed(0)
            } s`,
            {
              hint:
                `The agent may have stopped, or the guest may hang: \`emu logs --name ${options.name}\` shows its console; \`emu stop --name ${options.name}\`, then \`emu start\`, restarts it.`,
              cause: err,
            },
          );
        });
      try {
        const result = await qga.exec(command[0], {
          args: command.slice(1),
          timeoutMs: options.timeout * 1000,
        });
        io.stdoutBytes(result.stdout);
        io.stderrBytes(result.stderr);
        throw new ExitStatus(result.exitCode ?? 128 + (result.signal ?? 0));
      } catch (err) {
        if (err instanceof EmuError && err.code === "qga_command_failed") {
          throw new EmuError(
            "guest_command_failed",
            `Cannot run ${command[0]} in the guest: ${err.message}`,
            {
              hint: "Check the program exists in the guest (use its full path).",
            },
          );
        }
        throw err;
      }
    });
}
