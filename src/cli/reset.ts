/**
 * `emu reset`: stop an instance and drop its disk, so the next start is pristine.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { listInstances } from "../vm/instance.ts";
import { stopInstance } from "../vm/stop.ts";
import { nameOption } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";
import { exists } from "../exists.ts";

/** Registers `emu reset`. */
export function registerReset(program: Command, io: CliIo): void {
  program
    .command("reset")
    .description(
      "stop an instance and delete its disk, logs and checkpoints: the next start is pristine",
    )
    .addOption(nameOption())
    .option("--all", "reset every instance")
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const names = options.all
        ? (await listInstances(settings)).map((i) => i.name)
        : [options.name];
      const reset: string[] = [];
      const checkpoints: Record<string, number> = {};
      for (const name of names) {
        const dir = `${settings.layout.instances}/${name}`;
        if (!(await exists(dir))) {
          if (!options.all) {
            throw new EmuError(
              "instance_not_found",
              `Cannot reset instance ${name}: it does not exist`,
              { hint: "`emu status` lists instances." },
            );
          }
          continue;
        }
        await stopInstance({ settings, name, onProgress: (t) => out.info(`${name}: ${t}`) });
        checkpoints[name] = await Array.fromAsync(Deno.readDir(`${dir}/checkpoints`)).then(
          (e) => e.filter((d) => d.isDirectory && !d.name.startsWith(".")).length,
          () => 0,
        );
        await Deno.remove(dir, { recursive: true });
        reset.push(name);
      }
      out.json({ reset, checkpoints_removed: checkpoints });
      out.result(
        reset.length
          ? reset.map((n) =>
            `instance ${n} reset: its disk${
              checkpoints[n]
                ? ` and its ${checkpoints[n]} checkpoint${checkpoints[n] === 1 ? "" : "s"} are`
                : " is"
            } gone, the next start is pristine`
          ).join("\n")
          : "no instances to reset",
      );
    });
}
