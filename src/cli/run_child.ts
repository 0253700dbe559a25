/**
 * `emu run -- CMD…`: start the stack if needed, run a host command with its URLs in the
 * environment, stop what it started, and exit with the command's code.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { runHealthChecks } from "../vm/health.ts";
import { findInstance } from "../vm/instance.ts";
import { type InstanceRecord, portUrl } from "../vm/record.ts";
import { readSecretsFile } from "../vm/secrets_file.ts";
import { startInstance } from "../vm/start.ts";
import { stopInstance } from "../vm/stop.ts";
import { healthTimeoutOption, nameOption, portOption, profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { ExitStatus } from "./exit.ts";
import type { CliIo } from "./io.ts";

/**
 * The environment a child gets: `EMU_<PORT>_URL` and `EMU_<PORT>_PORT` per port, and
 * each secret this start rotated under its profile name (kept in memory only).
 */
export function childEnv(
  record: InstanceRecord,
  secrets: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = { ...secrets, EMU_INSTANCE: record.name };
  for (const [name, p] of Object.entries(record.ports)) {
    const key = name.toUpperCase();
    env[`EMU_${key}_URL`] = portUrl(p);
    env[`EMU_${key}_PORT`] = String(p.host);
  }
  return env;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
};

/** Registers `emu run`. */
export function registerRun(program: Command, io: CliIo): void {
  program
    .command("run")
    .description(
      "start the stack if needed, run a command with its URLs in the environment, then stop it",
    )
    .argument("<command...>", "host command and arguments, after --")
    .addOption(nameOption())
    .option("--keep", "leave the instance running afterwards")
    .addOption(portOption())
    .addOption(healthTimeoutOption())
    .option(
      "--checkpoint <name>",
      "restore this checkpoint first; the instance stays up afterwards, as the command left it",
    )
    .option("--restore-after", "with --checkpoint: restore the checkpoint again afterwards")
    .addHelpText(
      "after",
      "\nExample: emu run -- npm test\nThe child gets EMU_<PORT>_URL and EMU_<PORT>_PORT for every profile port and, when this run\nstarted the stack, each secret under its profile name; emu exits with the child's code.\n" +
        "Per test file, from one seeded state: emu checkpoint save seeded, then emu run --checkpoint seeded -- CMD.",
    )
    .action(async (command, options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile, path } = await profileFor(settings, io.env);
      if (options.restoreAfter && options.checkpoint === undefined) {
        throw new EmuError("usage", "Cannot use --restore-after without --checkpoint NAME");
      }
      const ports = Object.keys(options.port ?? {}).length > 0;
      if (options.checkpoint !== undefined && (ports || options.keep)) {
        throw new EmuError(
          "usage",
          `Cannot combine --checkpoint with ${ports ? "--port" : "--keep"}`,
          { hint: "A checkpoint comes back on the instance's own ports and stays up." },
        );
      }
      const found = await findInstance(settings, options.name);
      let record: InstanceRecord;
      let started = false;
      let secrets: Record<string, string> = {};
      const restore = async (checkpoint: string) => {
        const { restoreCheckpoint } = await import("../vm/checkpoint.ts");
        return await restoreCheckpoint({
          settings,
          profile,
          name: options.name,
          checkpoint,
          env: io.env,
          healthTimeoutMs: options.timeout * 1000,
          onProgress: (t) => out.info(t),
        });
      };
      if (options.checkpoint !== undefined) {
        const result = await restore(options.checkpoint);
        record = result.record;
        secrets = result.secrets;
      } else if (
        found.alive && found.record &&
        (await runHealthChecks(profile.health, found.record.ports)).every((h) => h.ok)
      ) {
        record = found.record;
        const saved = await readSecretsFile(found.paths.secretsFile);
        if (saved !== null) {
          secrets = saved;
          out.info(`reusing running instance ${options.name} with its saved secrets`);
        } else {
          out.info(
            `reusing running instance ${options.name} (its secrets are not passed on: start it with \`emu start --save-secrets\` for that)`,
          );
        }
      } else {
        const result = await startInstance({
          settings,
          profile,
          profilePath: path,
          name: options.name,
          portOverrides: options.port,
          env: io.env,
          healthTimeoutMs: options.timeout * 1000,
          stopOnFailure: true,
          onProgress: (t) => out.info(t),
        });
        record = result.record;
        started = !result.alreadyRunning;
        secrets = result.secrets;
      }
      let code: number;
      try {
        code = await runChild(command, childEnv(record, secrets), settings.cwd);
      } finally {
        if (options.restoreAfter && options.checkpoint !== undefined) {
          await restore(options.checkpoint);
        }
        if (started && !options.keep) {
          out.info(`stopping instance ${options.name}`);
          await stopInstance({ settings, name: options.name });
        }
      }
      throw new ExitStatus(code);
    });
}

async function runChild(
  command: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command[0], {
      args: command.slice(1),
      env,
      cwd,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (err) {
    throw new EmuError("usage", `Cannot run ${command[0]}: ${(err as Error).message}`, {
      hint: "Check the command name and PATH.",
    });
  }
  const forward = SIGNALS.map((signal) => {
    const handler = () => {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  try {
    const status = await child.status;
    return status.signal ? 128 + (SIGNAL_NUMBERS[status.signal] ?? 0) : status.code;
  } finally {
    forward.forEach((remove) => remove());
  }
}
