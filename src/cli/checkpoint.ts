/**
 * `emu checkpoint save|restore|ls|rm`: named return points of a running stack, for test
 * suites (docs/architecture.md, «Checkpoints»).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { findInstance } from "../vm/instance.ts";
import { healthTimeoutOption, nameOption, profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

const MIB = 2 ** 20;
const GIB = 2 ** 30;
/** Total size of an instance's checkpoints past which `save` and `ls` warn (GiB). */
const WARN_GIB_DEFAULT = 20;

/** Registers `emu checkpoint`. */
export function registerCheckpoint(program: Command, io: CliIo): void {
  const checkpoint = program.command("checkpoint").description(
    "save a running stack under a name and return to it in about a second (for test suites)",
  ).addHelpText(
    "after",
    "\nA checkpoint belongs to one instance and its image; `emu reset` removes them all.\n" +
      `emu warns when an instance's checkpoints pass EMU_CHECKPOINT_WARN_GIB (default ${WARN_GIB_DEFAULT}) GiB.`,
  );

  checkpoint
    .command("save")
    .description("save the running instance's RAM and disk as checkpoint NAME; it runs on")
    .argument("<NAME>", "checkpoint name (letters, digits, . _ -)")
    .addOption(nameOption())
    .option("--force", "replace a checkpoint of that name")
    .action(async (name, options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      const { saveCheckpoint } = await import("../vm/checkpoint.ts");
      const { info, all, ms, pausedMs } = await saveCheckpoint({
        settings,
        profile,
        name: options.name,
        checkpoint: name,
        env: io.env,
        force: options.force,
        onProgress: (t) => out.info(t),
      });
      out.json({
        instance: options.name,
        checkpoint: name,
        bytes: info.bytes,
        secrets: info.meta.checkpoint.secrets,
        ms,
        paused_ms: pausedMs,
      });
      out.result(
        `checkpoint ${name} of instance ${options.name} saved in ${(ms / 1000).toFixed(1)} s ` +
          `(guest paused ${(pausedMs / 1000).toFixed(2)} s; ${(info.bytes / MIB).toFixed(0)} MiB)` +
          (info.meta.checkpoint.secrets
            ? ""
            : "; the instance's secrets were not saved (start it with --save-secrets for `emu run` to pass them on)"),
      );
      warnIfLarge(out, options.name, all, io.env);
    });

  checkpoint
    .command("restore")
    .description("return the instance to checkpoint NAME: resumed, clock set, its secrets kept")
    .argument("<NAME>", "checkpoint name")
    .addOption(nameOption())
    .addOption(healthTimeoutOption())
    .action(async (name, options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      const { restoreCheckpoint } = await import("../vm/checkpoint.ts");
      const result = await restoreCheckpoint({
        settings,
        profile,
        name: options.name,
        checkpoint: name,
        env: io.env,
        healthTimeoutMs: options.timeout * 1000,
        onProgress: (t) => out.info(t),
      });
      out.json({
        ...result.record,
        boot_ms: result.bootMs,
        timings: result.timings,
        health: result.health,
      });
      out.result(
        `instance ${options.name} is healthy at checkpoint ${name} (restored in ${
          (result.bootMs / 1000).toFixed(1)
        } s)`,
      );
    });

  checkpoint
    .command("ls")
    .description("list the instance's checkpoints with their size")
    .addOption(nameOption())
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { listCheckpoints } = await import("../vm/checkpoint.ts");
      const found = await findInstance(settings, options.name);
      const list = await listCheckpoints(found.paths.dir, found.record);
      out.json(list.map((c) => ({
        name: c.name,
        created_at: c.meta.created_at,
        bytes: c.bytes,
        in_use: c.inUse,
        based_on: c.meta.checkpoint.based_on,
        secrets: c.meta.checkpoint.secrets,
      })));
      out.result(
        list.length === 0
          ? `instance ${options.name} has no checkpoints`
          : list.map((c) =>
            `${c.name.padEnd(20)} ${c.meta.created_at}  ${
              (c.bytes / MIB).toFixed(0).padStart(6)
            } MiB${c.inUse ? "  (in use)" : ""}${
              c.meta.checkpoint.based_on ? `  on ${c.meta.checkpoint.based_on}` : ""
            }`
          ).join("\n") +
            `\ntotal ${(list.reduce((s, c) => s + c.bytes, 0) / MIB).toFixed(0)} MiB`,
      );
      warnIfLarge(out, options.name, list, io.env);
    });

  checkpoint
    .command("rm")
    .description("remove checkpoint NAME (or --all); never one the instance runs on")
    .argument("[NAME]", "checkpoint name")
    .addOption(nameOption())
    .option("--all", "remove every checkpoint of the instance that nothing needs")
    .action(async (name, options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      if ((name === undefined) === !options.all) {
        throw new EmuError("usage", "Cannot remove checkpoints: give a NAME or --all (not both)");
      }
      const { removeCheckpoints } = await import("../vm/checkpoint.ts");
      const { removed, kept } = await removeCheckpoints(settings, options.name, {
        checkpoint: name,
        all: options.all,
      });
      out.json({ instance: options.name, removed, kept });
      const lines = removed.map((n) => `removed checkpoint ${n}`);
      for (const k of kept) lines.push(`kept checkpoint ${k.name}: ${k.why}`);
      out.result(lines.length ? lines.join("\n") : `instance ${options.name} has no checkpoints`);
    });
}

function warnIfLarge(
  out: { warn(text: string): void },
  instance: string,
  list: { bytes: number }[],
  env: Record<string, string | undefined>,
): void {
  const limit = Number(env.EMU_CHECKPOINT_WARN_GIB ?? WARN_GIB_DEFAULT);
  const total = list.reduce((s, c) => s + c.bytes, 0);
  if (Number.isFinite(limit) && total > limit * GIB) {
    out.warn(
      `the checkpoints of instance ${instance} take ${(total / GIB).toFixed(1)} GiB ` +
        `(over EMU_CHECKPOINT_WARN_GIB=${limit}); \`emu checkpoint rm\` frees space`,
    );
  }
}
