/**
 * Turns the global flags of a parsed command into what an action needs: settings and
 * an {@linkcode Output}.
 *
 * @module
 */
import { resolveSettings, type Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import type { CliIo } from "./io.ts";
import { Output } from "./output.ts";

/** The global options as commander parses them. */
export interface GlobalOptions {
  home?: string;
  config?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

/** What every command action starts with. */
export interface CommandContext {
  io: CliIo;
  out: Output;
  settings: Settings;
}

/** Output for the given global options (usable before settings resolve). */
export function outputFor(io: CliIo, globals: GlobalOptions): Output {
  return new Output(io, {
    json: globals.json === true,
    quiet: globals.quiet === true,
    verbose: globals.verbose === true,
  });
}

/** Builds the context of one command run. */
export function commandContext(io: CliIo, globals: GlobalOptions): CommandContext {
  if (globals.quiet && globals.verbose) {
    throw new EmuError("usage", "Cannot use --quiet and --verbose together", {
      hint: "Pick one of them.",
    });
  }
  const settings = resolveSettings(
    { home: globals.home, config: globals.config },
    io.env,
    { cwd: io.cwd, uid: io.uid, tmpDir: io.tmpDir },
  );
  return { io, out: outputFor(io, globals), settings };
}
