/**
 * Snapshots on disk (docs/architecture.md, «On-disk layout»): `snapshots/<image-id>/<fingerprint>/`
 * holding `state.raw` (the mapped-ram migration file, sparse), `disk.qcow2` (the frozen capture
 * disk, read-only) and `snapshot.json` — written last, so a directory without it is not a snapshot.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ImageInfo } from "../artifact/image_json.ts";
import { topologyHash, type VmSpec } from "../qemu/argv.ts";
import { SNAPSHOT_FILES } from "../config/filenames.ts";
import type { ClockMethod } from "./guest_clock.ts";

/** What must match between capture and resume, and what was measured. */
export interface SnapshotMeta {
  schema: 1;
  fingerprint: string;
  created_at: string;
  qemu_version: string;
  machine: string;
  accel: string;
  cpu: string;
  memory_mib: number;
  cpus: number;
  topology_hash: string;
  image_sha256: string;
  image_version: string;
  /**
   * The state file, `state.raw`: a snapshot's device state; a suspended state's or a
   * checkpoint's RAM and device state (mapped-ram, sparse).
   */
  state: {
    file: string;
    logical_bytes: number;
    allocated_bytes: number;
  };
  /**
   * A snapshot's guest RAM, in its own file (`ram.raw`, sparse; `ram.zst` when captured
   * with `--compress`): resumed as a private copy-on-write mapping, so loading costs the
   * same at any RAM size (`state` then holds only device state). Absent in a suspended
   * state or a checkpoint, whose `state` holds the RAM too (mapped-ram).
   */
  ram?: {
    file: string;
    logical_bytes: number;
    allocated_bytes: number;
    compressed_bytes?: number;
  };
  capture_ms: number;
  /**
   * How the guest's clock could be set when it was captured (`src/vm/guest_clock.ts`):
   * a resume skips a `date` the guest showed it lacks. Absent in older snapshots.
   */
  clock?: ClockMethod;
  /**
   * The UEFI firmware a firmware-booted arm64 guest ran (code and variable-store template,
   * each as path, size and modification time): its runtime services live in the saved
   * RAM, so another firmware build must not resume it. Absent for every other guest.
   */
  firmware?: string;
  /** Set when a resume from it failed to load: it is recaptured, not retried. */
  bad: { reason: string; at: string } | null;
}

/** The fields a snapshot's fingerprint covers. */
export interface FingerprintFields {
  qemuVersion: string;
  imageSha256: string;
  /** Covers what the disk hash does not, e.g. a direct-boot kernel and initrd. */
  imageVersion: string;
  spec: VmSpec;
  /** {@linkcode SnapshotMeta.firmware}, `null` or absent without firmware. */
  firmware?: string | null;
}

/** Hex fingerprint of everything a RAM snapshot depends on. */
export function snapshotFingerprint(f: FingerprintFields): string {
  const canonical = JSON.stringify({
    qemu: f.qemuVersion,
    image: f.imageSha256,
    imageVersion: f.imageVersion,
    machine: f.spec.machine,
    accel: f.spec.accel,
    cpu: f.spec.cpu,
    memory: f.spec.memoryMib,
    cpus: f.spec.cpus,
    topology: topologyHash(f.spec),
    // The snapshot layout: RAM in its own file beside the device state (issue 17).
    ram: "file",
    // Only when there is one, so the fingerprints of other guests stay as they were.
    ...(f.firmware ? { firmware: f.firmware } : {}),
  });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** `snapshots/<image-id>` for an image: its name, version and the start of its sha256. */
export function imageSnapshotsDir(snapshotsRoot: string, image: ImageInfo): string {
  const id = `${image.name}-${image.version}-${image.sha256.slice(0, 12)}`.replace(
    /[^A-Za-z0-9._-]/g,
    "_",
  );
  return join(snapshotsRoot, id);
}

/** Reads `snapshot.json` of `dir`, or `null` if there is no complete snapshot there. */
export async function readSnapshot(dir: string): Promise<SnapshotMeta | null> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(join(dir, SNAPSHOT_FILES.meta)));
    return meta?.schema === 1 ? meta as SnapshotMeta : null;
  } catch {
    return null;
  }
}

/** Writes `snapshot.json` atomically. */
export async function writeSnapshotMeta(dir: string, meta: SnapshotMeta): Promise<void> {
  const path = join(dir, SNAPSHOT_FILES.meta);
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
  try {
    await file.write(new TextEncoder().encode(`${JSON.stringify(meta, null, 2)}\n`));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(temp, path);
}

/** Marks the snapshot in `dir` bad, so the next start recaptures instead of retrying it. */
export async function markSnapshotBad(dir: string, reason: string): Promise<void> {
  const meta = await readSnapshot(dir);
  if (meta === null) return;
  meta.bad = { reason, at: new Date().toISOString() };
  await writeSnapshotMeta(dir, meta);
}

/** What in `meta` differs from what this host would use now (empty when it can be resumed). */
export function snapshotMismatches(
  meta: SnapshotMeta,
  now: FingerprintFields,
): string[] {
  const out: string[] = [];
  const check = (what: string, then: unknown, current: unknown) => {
    if (then !== current) out.push(`${what} was ${then}, now ${current}`);
  };
  check("QEMU", meta.qemu_version, now.qemuVersion);
  check("image", meta.image_sha256.slice(0, 12), now.imageSha256.slice(0, 12));
  check("image version", meta.image_version, now.imageVersion);
  check("machine", meta.machine, now.spec.machine);
  check("accelerator", meta.accel, now.spec.accel);
  check("CPU model", meta.cpu, now.spec.cpu);
  check("memory", meta.memory_mib, now.spec.memoryMib);
  check("vCPUs", meta.cpus, now.spec.cpus);
  check("device topology", meta.topology_hash.slice(0, 12), topologyHash(now.spec).slice(0, 12));
  check("firmware", meta.firmware ?? "none", now.firmware ?? "none");
  return out;
}

/** Builds the metadata of a state just saved for `spec`. */
export function newSnapshotMeta(fields: {
  fingerprint: string;
  qemuVersion: string;
  image: ImageInfo;
  spec: VmSpec;
  stateFile: string;
  state: { logical_bytes: number; allocated_bytes: number };
  ram?: SnapshotMeta["ram"];
  ms: number;
  clock?: ClockMethod;
  firmware?: string | null;
}): SnapshotMeta {
  return {
    schema: 1,
    fingerprint: fields.fingerprint,
    created_at: new Date().toISOString(),
    qemu_version: fields.qemuVersion,
    machine: fields.spec.machine,
    accel: fields.spec.accel,
    cpu: fields.spec.cpu,
    memory_mib: fields.spec.memoryMib,
    cpus: fields.spec.cpus,
    topology_hash: topologyHash(fields.spec),
    image_sha256: fields.image.sha256,
    image_version: fields.image.version,
    state: { file: fields.stateFile, ...fields.state },
    ...(fields.ram ? { ram: fields.ram } : {}),
    capture_ms: fields.ms,
    ...(fields.clock ? { clock: fields.clock } : {}),
    ...(fields.firmware ? { firmware: fields.firmware } : {}),
    bad: null,
  };
}
