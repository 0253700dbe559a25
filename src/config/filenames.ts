/**
 * Every name emu gives a file or directory under its home, in one place (the layout is
 * drawn in docs/architecture.md, «On-disk layout»). Everything else imports these.
 *
 * @module
 */

/** The top-level directories and files of the emu home. */
export const HOME_FILES = {
  images: "images",
  snapshots: "snapshots",
  instances: "instances",
  downloads: "downloads",
  probe: "probe.json",
  releasesSeen: "releases-seen.json",
} as const;

/** The files of an installed image directory (`images/<id>/`). */
export const IMAGE_FILES = {
  meta: "image.json",
  disk: "disk.qcow2",
  kernel: "kernel",
  initrd: "initrd",
  /** Size and mtime of the disk when it was last fully verified. */
  verified: "verified",
  lastUsed: "last_used",
} as const;

/** The files of a snapshot (`snapshots/<image-id>/<fingerprint>/`). */
export const SNAPSHOT_FILES = {
  meta: "snapshot.json",
  /** Device state (and, for a suspend or checkpoint, all RAM: mapped-ram). */
  state: "state.raw",
  /** A snapshot's guest RAM, as the capture's guest left it (resumed as a private mapping). */
  ram: "ram.raw",
  compressedRam: "ram.zst",
  /** The capture disk every resume boots on (read-only once captured). */
  disk: "disk.qcow2",
  runtimeIso: "runtime.iso",
  log: "capture.log",
  pid: "qemu.pid",
} as const;

/**
 * A firmware-booted arm64 guest's UEFI variable store, beside the disk it goes with
 * (snapshot, instance, checkpoint).
 */
export const EFI_VARS_FILE = "efivars.fd";

/** The files of an instance (`instances/<name>/`). */
export const INSTANCE_FILES = {
  record: "instance.json",
  runDisk: "run.qcow2",
  serialLog: "serial.log",
  runtimeIso: "runtime.iso",
  /** Only with `emu start --save-secrets`, mode 0600. */
  secrets: "secrets.env",
  lock: "lock",
  pid: "qemu.pid",
  /** The instance's own saved state (`emu suspend`). */
  suspend: "suspend",
} as const;

/** The file on the EMUCFG disk the guest reads its run-time values from. */
export const RUNTIME_ENV = "runtime.env";
