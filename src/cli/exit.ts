/**
 * A command that ends with a specific exit code (`emu exec`, `emu run`, `emu status`)
 * throws {@linkcode ExitStatus}; the CLI exits with it and prints nothing more.
 *
 * @module
 */

/** Ends the command with `code`, silently. */
export class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = "ExitStatus";
  }
}
