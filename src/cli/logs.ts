/**
 * `emu logs`: the instance's serial console.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { sleep } from "../async.ts";
import { findInstance } from "../vm/instance.ts";
import { clean } from "../qemu/serial_log.ts";
import { nameOption } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu logs`. */
export function registerLogs(program: Command, io: CliIo): void {
  program
    .command("logs")
    .description("print the instance's serial console log")
    .addOption(nameOption())
    .option("-f, --follow", "keep printing new output until Ctrl-C")
    .action(async (options, cmd) => {
      const { settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { paths } = await findInstance(settings, options.name);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(paths.serialLog, { read: true });
      } catch {
        throw new EmuError(
          "instance_not_found",
          `Cannot show logs of instance ${options.name}: it has no serial log`,
          {
            hint: "Start it with `emu start`; `emu reset` removes logs.",
          },
        );
      }
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      if (options.follow) Deno.addSignalListener("SIGINT", onSignal);
      try {
        const buffer = new Uint8Array(64 * 1024);
        const decoder = new TextDecoder();
        while (true) {
          const n = await file.read(buffer);
          if (n !== null && n > 0) {
            io.stdout(clean(decoder.decode(buffer.subarray(0, n), { stream: true })));
            continue;
          }
          if (!options.follow || controller.signal.aborted) break;
          await sleep(200, controller.signal).catch(() => {});
        }
      } finally {
        file.close();
        if (options.follow) Deno.removeSignalListener("SIGINT", onSignal);
      }
    });
}
