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

/**
 * Every stable error code, by group, with what it means for the user. `docs/errors.md`
 * is generated from this table (`deno task docs`). Add new codes at the end of a group;
 * never rename one.
 */
export const ERROR_CODES = {
  "usage and configuration": {
    usage: "The command line is wrong: an unknown option, a missing argument, a bad value.",
    config_not_found: "The profile named by --config or EMU_CONFIG does not exist.",
    config_parse: "emu.json is not valid JSON (the message gives the line and column).",
    config_invalid: "emu.json has a bad field (the message names every one).",
    home_unusable:
      "The emu home cannot be used: HOME is unset, it is not writable, it belongs to another user, or it is shared (writable by others).",
    runtime_dir_unusable:
      "The socket directory cannot be used: not absolute, a symlink, another user's, or writable by others.",
    socket_path_too_long:
      "A QMP or guest-agent socket path would exceed the 103 bytes unix sockets allow.",
  },
  "files and images": {
    io: "A file could not be read or written (the message names it).",
    iso_invalid_input:
      "emu iso was given something it cannot put on an image: a missing directory, a symlink out of it, a link cycle, a special file.",
    iso_too_large: "The ISO image would exceed what ISO 9660 can address.",
    image_invalid: "An image, its image.json or a release's descriptor is damaged or inconsistent.",
    manifest_invalid: "The release manifest is not a valid emu manifest (the field is named).",
    manifest_too_large: "The release manifest is larger than 1 MiB.",
    emu_too_old: "The manifest, descriptor or image was written by a newer emu: upgrade.",
    release_not_found: "The release, or its image for this architecture, is not in the source.",
    checksums_invalid:
      "SHA256SUMS (or a .sha256 file) is malformed, or does not list a file emu needs.",
    signature_invalid:
      "A signature does not verify, is missing, or no public key is configured; or a signing key is not ECDSA P-256.",
    download_failed: "A download failed (network, HTTP status) after its retries.",
    checksum_mismatch:
      "A downloaded or unpacked file does not have the sha256 its signed release says: nothing was installed.",
    image_unavailable: "The profile's image is not installed, or cannot be found or pulled.",
    rollback_refused:
      "A source offered an older latest release than one emu saw there before; name the version to go back on purpose.",
    disk_full:
      "A disk filled up while emu, QEMU or qemu-img wrote to it (the emu home, a download, a snapshot, an output file): nothing was half-published; free space and run the command again.",
  },
  instances: {
    instance_busy: "Another emu holds the instance's lock.",
    instance_not_found: "No instance of that name exists in this emu home.",
    instance_not_running: "The instance is not running (or is running but not healthy).",
    port_in_use: "A host port of the profile is taken by another process.",
    health_timeout: "A health check did not pass within the timeout.",
    guest_command_failed: "A command run in the guest (emu exec) could not be started.",
    snapshot_failed: "Saving or loading the VM state failed.",
    rotation_failed: "The guest's rotate command failed (it must read KEY=VALUE lines and exit 0).",
    checkpoint_exists: "The instance already has a checkpoint of that name (--force replaces it).",
    checkpoint_not_found: "The instance has no checkpoint of that name.",
    checkpoint_in_use:
      "The checkpoint cannot go: the instance runs on its disk, or another checkpoint is built on it.",
    checkpoint_mismatch:
      "The checkpoint no longer fits this QEMU, image, profile or snapshot; nothing was changed.",
  },
  "QEMU and the host": {
    qemu_missing: "QEMU (or qemu-img) is not installed, or too old.",
    qemu_failed:
      "QEMU exited or failed to start (the message has its last words, or the guest console's last lines when it died under a booting guest).",
    arch_unsupported: "The guest architecture cannot run on this host.",
    firmware_missing: "The UEFI firmware an image needs is not installed.",
    doctor_failed: "emu doctor found at least one failed check.",
  },
  protocol: {
    protocol: "QEMU or the guest agent sent something emu cannot read.",
    protocol_closed: "The QMP or guest-agent connection closed.",
    protocol_timeout: "QEMU or the guest agent did not answer in time.",
    socket_unavailable: "A QMP or guest-agent socket could not be connected to.",
    qmp_command_failed: "QEMU answered a QMP command with an error.",
    qga_command_failed: "The guest agent answered a command with an error.",
    aborted: "The operation was cancelled (Ctrl-C); what was done so far is kept or undone.",
  },
  "image build and publish": {
    image_build_input: "emu image build was given bad input (nothing was built).",
    provision_failed: "The guest reported EMU_PROVISION_FAILED while building.",
    provision_timeout: "Provisioning did not finish within --timeout.",
    publish_input: "emu image publish was given bad input (nothing was written).",
  },
  "self-update": {
    upgrade_refused:
      "emu will not replace this binary (Homebrew, deno run, Windows), or the new one is not the release it claims to be.",
  },
  internal: {
    internal: "A bug in emu: please report it with the message.",
  },
} as const;

type CodesOf<T> = { [G in keyof T]: keyof T[G] }[keyof T];

/** Stable error codes (see {@linkcode ERROR_CODES}). */
export type EmuErrorCode = CodesOf<typeof ERROR_CODES>;

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

/** What the OS, QEMU and qemu-img say when a disk fills up (strerror of ENOSPC, EDQUOT). */
const NO_SPACE = /No space left on device|\bENOSPC\b|Disk quota exceeded|\bEDQUOT\b/;

/**
 * `err` as the user should see it when a disk filled up, whichever layer met it (a file
 * write, QEMU's migration, qemu-img): `disk_full` with the original message; any other
 * error is returned unchanged.
 *
 * @example
 * ```ts
 * import { EmuError, explainDiskFull } from "./errors.ts";
 * const err = new EmuError("snapshot_failed", "Cannot save the VM state: migration failed: No space left on device");
 * const shown = explainDiskFull(err) as EmuError;
 * if (shown.code !== "disk_full" || shown.message !== err.message) throw new Error();
 * ```
 */
export function explainDiskFull(err: unknown): unknown {
  if (err instanceof EmuError && err.code === "disk_full") return err;
  let full = false;
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    const code = (e as { code?: unknown })?.code;
    if (NO_SPACE.test(e instanceof Error ? e.message : String(e)) || code === "ENOSPC") {
      full = true;
      break;
    }
    e = e instanceof Error ? e.cause : undefined;
  }
  if (!full) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EmuError(
    "disk_full",
    /^Cannot /.test(message) ? message : `Cannot write: ${message}`,
    {
      hint:
        "The disk is full: free some space (`emu images` and `emu reset` free emu's own), then run the same command again; nothing was half-published.",
      cause: err,
    },
  );
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
