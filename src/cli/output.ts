/**
 * How commands talk to the user: results on stdout (JSON with `--json`), everything
 * else on stderr, colour only on a terminal without `NO_COLOR`, nothing but warnings and
 * errors with `--quiet`.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import type { CliIo } from "./io.ts";

/** Output modes from the global flags. */
export interface OutputMode {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
}

/** Whether to colour stderr: a terminal, `NO_COLOR` unset or empty, and not `TERM=dumb`. */
export function colorEnabled(io: CliIo): boolean {
  const noColor = io.env.NO_COLOR;
  return io.stderrIsTerminal && (noColor === undefined || noColor === "") && io.env.TERM !== "dumb";
}

/** Writes results, messages and errors according to the global flags. */
export class Output {
  readonly mode: OutputMode;
  readonly #io: CliIo;
  readonly #color: boolean;

  constructor(io: CliIo, mode: OutputMode) {
    this.#io = io;
    this.mode = mode;
    this.#color = colorEnabled(io);
  }

  /** A human-readable result on stdout; not printed with `--json`. */
  result(text: string): void {
    if (!this.mode.json) this.#io.stdout(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** The machine-readable result on stdout; printed only with `--json`. */
  json(value: unknown): void {
    if (this.mode.json) this.#io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A progress or status message on stderr; silent with `--quiet`. */
  info(text: string): void {
    if (!this.mode.quiet) this.#io.stderr(`${text}\n`);
  }

  /** Detail for `--verbose` on stderr. */
  debug(text: string): void {
    if (this.mode.verbose) this.#io.stderr(`${this.#paint("2", "debug:")} ${text}\n`);
  }

  /** A warning on stderr; shown even with `--quiet`. */
  warn(text: string): void {
    this.#io.stderr(`${this.#paint("33;1", "warning:")} ${text}\n`);
  }

  /**
   * Prints an error: `error[code]: message` and the hint on stderr (with `--json`, also
   * `{"error": {…}}` on stdout). The stack only with `--verbose`.
   */
  error(err: unknown): void {
    const emu = err instanceof EmuError ? err : undefined;
    const code = emu?.code ?? "internal";
    const message = err instanceof Error ? err.message : String(err);
    let text = `${this.#paint("31;1", `error[${code}]:`)} ${message}\n`;
    if (emu?.hint) text += `${this.#paint("36", "hint:")} ${emu.hint}\n`;
    if (emu === undefined && !this.mode.verbose) {
      text += `${
        this.#paint("36", "hint:")
      } This is a bug in emu; run again with --verbose and report the output.\n`;
    }
    if (this.mode.verbose && err instanceof Error && err.stack) text += `${err.stack}\n`;
    this.#io.stderr(text);
    if (this.mode.json) {
      this.#io.stdout(
        `${JSON.stringify({ error: { code, message, hint: emu?.hint ?? null } }, null, 2)}\n`,
      );
    }
  }

  #paint(sgr: string, text: string): string {
    return this.#color ? `\x1b[${sgr}m${text}\x1b[0m` : text;
  }
}
