/**
 * Typed errors that the CLI catches and prints.
 *
 * Every error a user can meet carries a stable `code` (safe to match in scripts and
 * tests), a message shaped "Cannot <action>: <detail>", and a hint that says what to
 * do next. The CLI prints `error[<code>]: <message>` and the hint, and maps the error
 * to an exit code; the stack trace is shown only with `--verbose`.
 *
 * @module
 */

/** Stable error codes. Add new codes at the end of a group; never rename one. */
export type EmuErrorCode =
  // usage and configuration
  | "usage"
  | "config_not_found"
  | "config_parse"
  | "config_invalid"
  | "home_unusable"
  | "runtime_dir_unusable"
  | "socket_path_too_long"
  // files and images
  | "io"
  | "iso_invalid_input"
  | "iso_too_large"
  | "image_invalid"
  | "manifest_invalid"
  | "manifest_too_large"
  | "emu_too_old"
  | "release_not_found"
  | "checksums_invalid"
  | "signature_invalid"
  | "download_failed"
  | "checksum_mismatch"
  | "image_unavailable"
  | "rollback_refused"
  // instances
  | "instance_busy"
  | "instance_not_found"
  | "instance_not_running"
  | "port_in_use"
  | "health_timeout"
  | "guest_command_failed"
  | "snapshot_failed"
  | "rotation_failed"
  // QEMU and the host
  | "qemu_missing"
  | "qemu_failed"
  | "arch_unsupported"
  | "firmware_missing"
  | "doctor_failed"
  // protocol
  | "protocol"
  | "protocol_closed"
  | "protocol_timeout"
  | "socket_unavailable"
  | "qmp_command_failed"
  | "qga_command_failed"
  | "aborted"
  // image build
  | "image_build_input"
  | "provision_failed"
  | "provision_timeout"
  | "publish_input"
  // self-update
  | "upgrade_refused"
  // internal
  | "internal";

/** Options for {@linkcode EmuError}. */
export interface EmuErrorOptions {
  /** What the user can do about it, printed on its own line after the message. */
  hint?: string;
  /** Process exit code; 1 unless it is a usage error (2). */
  exitCode?: number;
  /** The lower-level error this one explains. */
  cause?: unknown;
}

/**
 * An error meant for the user: stable code, clear message, optional hint.
 *
 * @example
 * ```ts
 * import { EmuError } from "./errors.ts";
 * const err = new EmuError("config_invalid", "Cannot load emu.json: vm.cpus must be an integer", {
 *   hint: "Set vm.cpus to a whole number such as 2.",
 * });
 * if (err.code !== "config_invalid" || err.exitCode !== 1) throw new Error("unexpected");
 * ```
 */
export class EmuError extends Error {
  /** Stable machine-readable code. */
  readonly code: EmuErrorCode;
  /** What the user can do next, if anything useful can be said. */
  readonly hint?: string;
  /** Exit code the CLI uses for this error. */
  readonly exitCode: number;

  constructor(code: EmuErrorCode, message: string, options: EmuErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EmuError";
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? (code === "usage" ? 2 : 1);
  }
}

/** True when `err` is an {@linkcode EmuError}, optionally with the given code. */
export function isEmuError(err: unknown, code?: EmuErrorCode): err is EmuError {
  return err instanceof EmuError && (code === undefined || err.code === code);
}

/**
 * A command the peer (QEMU's monitor or the guest agent) answered with an error. Carries
 * the command sent and the error class received, so callers can react to specific ones.
 */
export class CommandError extends EmuError {
  /** The command that failed, e.g. `migrate-incoming`. */
  readonly command: string;
  /** The peer's error class, e.g. `GenericError`, `CommandNotFound`. */
  readonly errorClass: string;
  /** The peer's own description. */
  readonly description: string;

  constructor(
    code: "qmp_command_failed" | "qga_command_failed",
    command: string,
    errorClass: string,
    description: string,
  ) {
    const peer = code === "qmp_command_failed" ? "QEMU" : "the guest agent";
    super(code, `Cannot run ${command}: ${peer} answered ${errorClass}: ${description}`);
    this.name = "CommandError";
    this.command = command;
    this.errorClass = errorClass;
    this.description = description;
  }
}
