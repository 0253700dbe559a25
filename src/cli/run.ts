/**
 * Runs the CLI once: parses, dispatches, and turns every failure into one clear message
 * and an exit code (0 ok, 1 failure, 2 usage error).
 *
 * @module
 */
import { type Command, CommanderError } from "@commander-js/extra-typings";
import { resolveHome } from "../config/paths.ts";
import { ensurePrivateHome } from "../config/private_dir.ts";
import { EmuError, explainDiskFull } from "../errors.ts";
import { type GlobalOptions, outputFor } from "./context.ts";
import { ExitStatus } from "./exit.ts";
import type { CliIo } from "./io.ts";
import { buildProgram } from "./program.ts";

/**
 * Runs `emu` with `args` (without the program name) and returns the exit code; `program`
 * is the command tree writing through `io` (built here unless given).
 */
export async function runCli(
  args: string[],
  io: CliIo,
  program: Command = buildProgram(io),
): Promise<number> {
  // Global options may follow the command; the error printer needs them either way.
  let globals: GlobalOptions = globalsFromArgs(args);
  program.hook("preAction", (_program, action) => {
    globals = action.optsWithGlobals() as GlobalOptions;
    // An existing home made looser by an older emu (or another umask) is made private
    // before any command reads or writes it; a shared or foreign one is refused.
    const home = homeIfResolvable(globals, io);
    if (home !== null) ensurePrivateHome(home);
  });
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof ExitStatus) return err.code;
    const out = outputFor(io, globals);
    if (err instanceof CommanderError) {
      // Help and --version end parsing with a "error" that is really success.
      if (err.exitCode === 0) return 0;
      // `emu` alone (or a group command alone) has already printed its help on stderr.
      if (err.code === "commander.help") return 2;
      const message = err.message.replace(/^error: /, "").replace(
        /\n\(Did you mean (.*)\)$/,
        " (did you mean $1)",
      );
      const usage = new EmuError("usage", message.charAt(0).toUpperCase() + message.slice(1), {
        hint: "Run `emu --help` (or `emu help COMMAND`) for usage.",
      });
      out.error(usage);
      return usage.exitCode;
    }
    const shown = explainDiskFull(err);
    out.error(shown);
    return shown instanceof EmuError ? shown.exitCode : 1;
  }
}

function homeIfResolvable(globals: GlobalOptions, io: CliIo): string | null {
  try {
    return resolveHome({ flag: globals.home, env: io.env, cwd: io.cwd });
  } catch {
    return null; // the command reports a missing HOME itself
  }
}

/** `--json`, `-v` and `-q` as written on the command line (before any `--`), for errors that come before an action. */
function globalsFromArgs(args: string[]): GlobalOptions {
  const end = args.indexOf("--");
  const words = end < 0 ? args : args.slice(0, end);
  return {
    json: words.includes("--json"),
    verbose: words.includes("-v") || words.includes("--verbose"),
    quiet: words.includes("-q") || words.includes("--quiet"),
  };
}
