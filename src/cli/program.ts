/**
 * The command tree. Each command lives in its own file and registers itself here; only
 * commands that work are registered.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { VERSION } from "../version.ts";
import { registerCapture } from "./capture.ts";
import { registerCheckpoint } from "./checkpoint.ts";
import { registerCompletions } from "./completions.ts";
import { registerConfig } from "./config.ts";
import { registerDoctor } from "./doctor.ts";
import type { CliIo } from "./io.ts";
import { registerExec } from "./exec.ts";
import { registerImage } from "./image.ts";
import { registerImages } from "./images.ts";
import { registerIso } from "./iso.ts";
import { registerListReleases } from "./list_releases.ts";
import { registerLogs } from "./logs.ts";
import { registerPull } from "./pull.ts";
import { registerReset } from "./reset.ts";
import { registerRun } from "./run_child.ts";
import { registerStart } from "./start.ts";
import { registerStatus } from "./status.ts";
import { registerStop } from "./stop.ts";
import { registerSuspend } from "./suspend.ts";
import { registerUpgrade } from "./upgrade.ts";

/** Builds the `emu` command tree writing through `io`. */
export function buildProgram(io: CliIo): Command {
  const program = new Command("emu")
    .description(
      "Run a product's whole backend stack locally as one QEMU VM, resumed from a RAM\n" +
        "snapshot in about a second, with fresh secrets at every start.",
    )
    .version(VERSION, "-V, --version", "print emu's version")
    .helpOption("-h, --help", "show help for a command")
    .helpCommand("help [command]", "show help for a command")
    // Program options end at the subcommand, so a command can have its own `--version`
    // (emu pull --version 1.4.0); the global options are added to every command instead.
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
      // Usage errors are printed by the CLI's single error printer instead.
      outputError: () => {},
    })
    .addHelpText(
      "after",
      "\nEnvironment:\n" +
        "  EMU_HOME         emu home directory (like --home)\n" +
        "  EMU_CONFIG       profile path (like --config)\n" +
        "  EMU_QEMU_DIR     directory searched for qemu-system-* and qemu-img before PATH\n" +
        "  EMU_RUNTIME_DIR  short directory for QMP/QGA sockets (default: $XDG_RUNTIME_DIR/emu or /tmp/emu-<uid>)\n" +
        "  NO_COLOR         disable colour\n" +
        "\nExit codes: 0 ok, 1 failure, 2 usage error.",
    );

  registerStart(program, io);
  registerPull(program, io);
  registerListReleases(program, io);
  registerImages(program, io);
  registerCapture(program, io);
  registerStop(program, io);
  registerSuspend(program, io);
  registerCheckpoint(program, io);
  registerStatus(program, io);
  registerReset(program, io);
  registerLogs(program, io);
  registerExec(program, io);
  registerRun(program, io);
  registerConfig(program, io);
  registerDoctor(program, io);
  registerImage(program, io);
  registerIso(program, io);
  registerUpgrade(program, io);
  registerCompletions(program, io);
  const everyCommand = (command: Command): void => {
    addGlobalOptions(command);
    for (const child of command.commands) everyCommand(child as unknown as Command);
  };
  everyCommand(program);
  return program as unknown as Command;
}

/** The global options (docs/cli/emu.md), accepted before the command and after it. */
export const GLOBAL_OPTION_FLAGS = ["--home", "--config", "--json", "--verbose", "--quiet"];

function addGlobalOptions(command: Command): void {
  command
    .option("--home <dir>", "emu home directory (default: $EMU_HOME or ~/.emu)")
    .option(
      "--config <file>",
      "profile to use (default: $EMU_CONFIG, ./emu.json, or the built-in demo)",
    )
    .option("--json", "machine-readable output on stdout; messages stay on stderr")
    .addOption(
      new Option("-v, --verbose", "more detail, and stack traces on errors").conflicts("quiet"),
    )
    .option("-q, --quiet", "only warnings and errors");
}
