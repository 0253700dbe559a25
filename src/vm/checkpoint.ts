/**
 * Checkpoints (docs/architecture.md, «Checkpoints»): named return points of one instance.
 * `save` pauses the running guest, saves its RAM (mapped-ram, as a capture does) and a
 * copy of its run disk taken while QEMU's disks are flushed and idle, then lets it run
 * on; `restore` replaces the instance's QEMU with one resumed from the checkpoint, on a
 * fresh overlay of the checkpoint's disk, without rotation (the guest's data expects the
 * checkpoint's secrets, which travel with it in a 0600 file).
 *
 * `instances/<name>/checkpoints/<checkpoint>/`: `snapshot.json` (the snapshot fields
 * and fingerprint rules, plus `checkpoint`), `state.raw`, `disk.qcow2` (read-only; its
 * backing is what the run disk's was: the snapshot's disk, or an earlier checkpoint's),
 * `runtime.iso`, and `secrets.env` when the instance's secrets were saved.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { QmpClient } from "../protocol/mod.ts";
import { probeHost } from "../qemu/probe.ts";
import { killAndWait } from "../qemu/process.ts";
import { backingFile } from "../qemu/img.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EFI_VARS_FILE, INSTANCE_FILES, SNAPSHOT_FILES } from "../config/filenames.ts";
import { copyVarsStore } from "../qemu/firmware.ts";
import { attachAgent } from "./_boot.ts";
import { type ClockMethod, setGuestClock } from "./guest_clock.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, lockInstance } from "./instance.ts";
import { migrationChannels, saveState, syncStateFile } from "./migration.ts";
import { assertPortsFree } from "./ports.ts";
import type { InstanceRecord } from "./record.ts";
import { continueGuest, recoverInterrupted } from "./recover.ts";
import { resumeCheckpoint } from "./resume.ts";
import { runningSpec } from "./suspend.ts";
import { readSecretsFile, removeSecretsFile, writeSecretsFile } from "./secrets_file.ts";
import {
  newSnapshotMeta,
  readSnapshot,
  type SnapshotMeta,
  snapshotMismatches,
  writeSnapshotMeta,
} from "./snapshot.ts";
import { firmwareIdentity, instanceRunPaths, vmSpec } from "./spec.ts";
import type { StartResult } from "./start_types.ts";
import { resolvePorts } from "./start.ts";
import { exists } from "../exists.ts";

/** What a checkpoint adds to the snapshot fields. */
export interface CheckpointFields {
  name: string;
  /** The checkpoint whose disk this one's disk is stacked on, if any. */
  based_on: string | null;
  /** The disk this checkpoint's disk is backed by (must still exist to restore). */
  backing: string;
  /** The instance's secrets were saved with it (`secrets.env`, 0600). */
  secrets: boolean;
  disk_bytes: number;
}

/** A checkpoint's metadata. */
export type CheckpointMeta = SnapshotMeta & { checkpoint: CheckpointFields };

/** A checkpoint as listed. */
export interface CheckpointInfo {
  name: string;
  dir: string;
  meta: CheckpointMeta;
  /** Bytes on disk: the state file's allocated blocks and the disk copy. */
  bytes: number;
  /** The instance runs (or would start) on this checkpoint's disk. */
  inUse: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Refuses a checkpoint name that is not a plain file name. */
export function validateCheckpointName(name: string): void {
  if (!NAME.test(name)) {
    throw new EmuError(
      "usage",
      `Cannot use ${JSON.stringify(name)} as a checkpoint name`,
      {
        hint: "Use letters, digits, '.', '_' and '-' (up to 63), starting with a letter or digit.",
      },
    );
  }
}

/** `instances/<name>/checkpoints`. */
export function checkpointsDir(instanceDir: string): string {
  return join(instanceDir, "checkpoints");
}

/** The checkpoints of an instance, oldest first. */
export async function listCheckpoints(
  instanceDir: string,
  record: InstanceRecord | null,
): Promise<CheckpointInfo[]> {
  const root = checkpointsDir(instanceDir);
  const out: CheckpointInfo[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch { /* none yet */ }
  const runDisk = await Deno.stat(join(instanceDir, INSTANCE_FILES.runDisk)).then(
    () => true,
    () => false,
  );
  for (const e of entries) {
    if (!e.isDirectory || e.name.startsWith(".")) continue;
    const dir = join(root, e.name);
    const meta = await readSnapshot(dir) as CheckpointMeta | null;
    if (meta?.checkpoint === undefined) continue;
    const state = await Deno.stat(join(dir, meta.state.file)).catch(() => null);
    out.push({
      name: e.name,
      dir,
      meta,
      bytes: (state?.blocks ?? 0) * 512 + meta.checkpoint.disk_bytes,
      inUse: runDisk && record?.checkpoint === e.name,
    });
  }
  return out.sort((a, b) => a.meta.created_at.localeCompare(b.meta.created_at));
}

/** Options of {@linkcode saveCheckpoint}. */
export interface CheckpointOptions {
  settings: Settings;
  profile: Profile;
  /** The instance. */
  name: string;
  checkpoint: string;
  env: Record<string, string | undefined>;
  /** Replace a checkpoint of that name. */
  force?: boolean;
  healthTimeoutMs?: number;
  onProgress?: (text: string) => void;
  signal?: AbortSignal;
}

/**
 * Saves running instance `name` as checkpoint `checkpoint`; the guest runs on. A failure
 * leaves no checkpoint directory and the guest running.
 */
export async function saveCheckpoint(
  options: CheckpointOptions,
): Promise<{ info: CheckpointInfo; all: CheckpointInfo[]; ms: number; pausedMs: number }> {
  const { settings, profile, name, checkpoint } = options;
  const progress = options.onProgress ?? (() => {});
  validateCheckpointName(checkpoint);
  using locked = await lockInstance(settings, name);
  const { record, alive, paths } = await recoverInterrupted(locked.found, progress);
  await removeStaging(paths.dir);
  if (!alive || record === null || record.pid === null || record.state !== "running") {
    throw new EmuError(
      "instance_not_running",
      `Cannot save checkpoint ${checkpoint}: instance ${name} is not running`,
      { hint: "Start it with `emu start`, bring it to the state you want, then save." },
    );
  }
  const existing = await listCheckpoints(paths.dir, record);
  const same = existing.find((c) => c.name === checkpoint);
  if (same && !options.force) {
    throw new EmuError(
      "checkpoint_exists",
      `Cannot save checkpoint ${checkpoint}: instance ${name} already has one of that name`,
      { hint: `Pick another name, or replace it with --force.` },
    );
  }
  if (same && (same.inUse || existing.some((c) => c.meta.checkpoint.based_on === checkpoint))) {
    throw new EmuError(
      "checkpoint_in_use",
      `Cannot replace checkpoint ${checkpoint}: ${
        same.inUse
          ? `instance ${name} runs on its disk`
          : "another checkpoint's disk is built on it"
      }`,
      { hint: "Save under another name." },
    );
  }
  const { image, probe, runtimeIso, spec } = await runningSpec(
    settings,
    profile,
    record,
    paths,
    options.env,
  );
  const root = checkpointsDir(paths.dir);
  const staging = join(root, `.${checkpoint}.tmp-${crypto.randomUUID().slice(0, 8)}`);
  const final = join(root, checkpoint);
  await Deno.mkdir(staging, { recursive: true, mode: 0o700 });
  const started = performance.now();
  let pausedMs = 0;
  let clock: ClockMethod | undefined;
  try {
    const backing = await backingFile(probe.qemu.img, paths.runDisk);
    progress(`saving checkpoint ${checkpoint} of instance ${name}`);
    {
      await using qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
      // Held through the save, so a restored agent answers at once (see attachAgent).
      await using agent = await attachAgent(paths.qgaSocket, { timeoutMs: 5_000 });
      const paused = performance.now();
      let running = false;
      try {
        await saveState(qmp, join(staging, SNAPSHOT_FILES.state), {
          channels: migrationChannels(profile.vm.cpus),
        });
        // The migration ended with QEMU's disks flushed and idle: the run disk as it is
        // now belongs to the RAM just saved.
        await Deno.copyFile(paths.runDisk, join(staging, SNAPSHOT_FILES.disk));
        // A firmware-booted guest's NVRAM belongs to that RAM too.
        if (spec.firmware?.vars) {
          await copyVarsStore(spec.firmware.vars, join(staging, EFI_VARS_FILE));
        }
      } finally {
        running = await qmp.cont({ timeoutMs: 10_000 }).then(
          () => true,
          () => continueGuest(paths.qmpSocket),
        );
        pausedMs = Math.round(performance.now() - paused);
      }
      // Said, never left silent: a paused guest answers no request.
      if (!running) {
        throw new EmuError(
          "qemu_failed",
          `Cannot save checkpoint ${checkpoint}: QEMU did not continue instance ${name} after the save; its guest is paused`,
          { hint: `\`emu stop --name ${name}\`, then \`emu start\`, brings it back.` },
        );
      }
      // The guest's clock stood still while it was paused.
      // (How it could be set is what a restore will use.)
      if (agent) clock = await setGuestClock(agent, { timeoutMs: 10_000 }).catch(() => undefined);
    }
    await Deno.chmod(join(staging, SNAPSHOT_FILES.disk), 0o444);
    await Deno.copyFile(runtimeIso, join(staging, SNAPSHOT_FILES.runtimeIso));
    const secrets = await readSecretsFile(paths.secretsFile);
    if (secrets !== null) await writeSecretsFile(join(staging, INSTANCE_FILES.secrets), secrets);
    const state = await syncStateFile(join(staging, SNAPSHOT_FILES.state));
    const diskBytes = (await Deno.stat(join(staging, SNAPSHOT_FILES.disk))).size;
    const meta: CheckpointMeta = {
      ...newSnapshotMeta({
        fingerprint: "checkpoint",
        qemuVersion: probe.qemu.versionText,
        image,
        spec,
        stateFile: SNAPSHOT_FILES.state,
        state,
        ms: pausedMs,
        clock,
        firmware: firmwareIdentity(spec, probe),
      }),
      checkpoint: {
        name: checkpoint,
        based_on: record.checkpoint ?? null,
        backing,
        secrets: secrets !== null,
        disk_bytes: diskBytes,
      },
    };
    await writeSnapshotMeta(staging, meta);
    if (same) await Deno.remove(final, { recursive: true });
    await Deno.rename(staging, final);
  } catch (err) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw err;
  }
  const all = await listCheckpoints(paths.dir, record);
  const info = all.find((c) => c.name === checkpoint)!;
  return { info, all, ms: Math.round(performance.now() - started), pausedMs };
}

/**
 * Restores instance `name` to checkpoint `checkpoint`: its QEMU (if any) is stopped and
 * a new one resumed from the checkpoint, the clock set, no rotation; the instance's
 * saved secrets become the checkpoint's. A checkpoint that no longer fits this host,
 * image or snapshot is refused before anything is stopped.
 */
export async function restoreCheckpoint(options: CheckpointOptions): Promise<StartResult> {
  const { settings, profile, name, checkpoint } = options;
  const progress = options.onProgress ?? (() => {});
  validateCheckpointName(checkpoint);
  using locked = await lockInstance(settings, name);
  const { record, alive, paths } = await recoverInterrupted(locked.found, progress);
  const all = await listCheckpoints(paths.dir, record);
  const found = all.find((c) => c.name === checkpoint);
  if (found === undefined) {
    throw new EmuError(
      "checkpoint_not_found",
      `Cannot restore checkpoint ${checkpoint}: instance ${name} has no checkpoint of that name`,
      {
        hint: all.length
          ? `Its checkpoints: ${all.map((c) => c.name).join(", ")}.`
          : "`emu checkpoint save NAME` saves one.",
      },
    );
  }
  const image = await resolveImage(profile, settings);
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env: options.env,
    guestArch: image.arch,
  });
  const ports = record?.ports ?? resolvePorts(profile);
  const spec = vmSpec(
    profile,
    image,
    probe,
    instanceRunPaths(paths, name, ports, join(found.dir, SNAPSHOT_FILES.runtimeIso), true),
  );
  const mismatches = snapshotMismatches(found.meta, {
    qemuVersion: probe.qemu.versionText,
    imageSha256: image.sha256,
    imageVersion: image.version,
    spec,
    firmware: firmwareIdentity(spec, probe),
  });
  if (!(await exists(found.meta.checkpoint.backing))) {
    mismatches.push(`the disk it was saved on top of is gone (${found.meta.checkpoint.backing})`);
  }
  if (mismatches.length > 0) {
    throw new EmuError(
      "checkpoint_mismatch",
      `Cannot restore checkpoint ${checkpoint}: it no longer matches (${mismatches.join("; ")})`,
      {
        hint:
          "Nothing was changed. Remove it (`emu checkpoint rm`) and save a new one from a fresh start.",
      },
    );
  }
  if (alive && record?.pid) {
    progress(`stopping instance ${name} (pid ${record.pid}) to restore ${checkpoint}`);
    await killAndWait(record.pid);
  }
  await clearRuntimeFiles(paths);
  await Deno.remove(join(paths.dir, INSTANCE_FILES.suspend), { recursive: true }).catch(() => {});
  await assertPortsFree(ports, settings.layout.instances);
  const result = await resumeCheckpoint(
    {
      options: {
        settings,
        profile,
        profilePath: record?.profile ?? null,
        name,
        env: options.env,
        healthTimeoutMs: options.healthTimeoutMs,
        signal: options.signal,
      },
      profile,
      image,
      probe,
      ports,
      paths,
      progress,
    },
    found,
    record?.snapshot ?? null,
  );
  // The guest now holds the checkpoint's secrets.
  await removeSecretsFile(paths.secretsFile);
  const saved = await readSecretsFile(join(found.dir, INSTANCE_FILES.secrets));
  if (saved !== null) await writeSecretsFile(paths.secretsFile, saved);
  return { ...result, secrets: saved ?? {} };
}

/**
 * Removes checkpoints of instance `name` (all of them with `all`), never one the
 * instance runs on or another checkpoint is built on. Returns the names removed.
 */
export async function removeCheckpoints(
  settings: Settings,
  name: string,
  which: { checkpoint?: string; all?: boolean },
): Promise<{ removed: string[]; kept: { name: string; why: string }[] }> {
  using locked = await lockInstance(settings, name);
  const { record, paths } = locked.found;
  await removeStaging(paths.dir);
  const all = await listCheckpoints(paths.dir, record);
  const targets = which.all ? all : all.filter((c) => c.name === which.checkpoint);
  if (!which.all && targets.length === 0) {
    throw new EmuError(
      "checkpoint_not_found",
      `Cannot remove checkpoint ${which.checkpoint}: instance ${name} has no checkpoint of that name`,
      { hint: all.length ? `Its checkpoints: ${all.map((c) => c.name).join(", ")}.` : undefined },
    );
  }
  const removing = new Set(targets.map((c) => c.name));
  const needed = (c: CheckpointInfo): string | null => {
    if (c.inUse) return `instance ${name} runs on its disk`;
    const child = all.find((o) => o.meta.checkpoint.based_on === c.name && !removing.has(o.name));
    return child ? `checkpoint ${child.name} is built on it` : null;
  };
  // Keep what is needed, then what the kept ones need (their bases).
  const kept = new Map<string, string>();
  let changed = true;
  while (changed) {
    changed = false;
    for (const c of targets) {
      if (kept.has(c.name)) continue;
      const why = needed(c) ??
        ([...kept.keys()].some((k) =>
            all.find((o) => o.name === k)?.meta.checkpoint.based_on === c.name
          )
          ? "a kept checkpoint is built on it"
          : null);
      if (why) {
        kept.set(c.name, why);
        removing.delete(c.name);
        changed = true;
      }
    }
  }
  if (!which.all && kept.size > 0) {
    throw new EmuError(
      "checkpoint_in_use",
      `Cannot remove checkpoint ${which.checkpoint}: ${kept.get(which.checkpoint!)}`,
      {
        hint:
          "Restore another checkpoint or `emu reset` the instance first (reset removes every checkpoint).",
      },
    );
  }
  for (const c of targets) {
    if (removing.has(c.name)) await Deno.remove(c.dir, { recursive: true });
  }
  return {
    removed: [...removing],
    kept: [...kept].map(([n, why]) => ({ name: n, why })),
  };
}

/** Removes what a save killed midway left (`.NAME.tmp-*`). */
async function removeStaging(instanceDir: string): Promise<void> {
  const root = checkpointsDir(instanceDir);
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch { /* none */ }
  for (const e of entries) {
    if (e.name.startsWith(".") && e.name.includes(".tmp-")) {
      await Deno.remove(join(root, e.name), { recursive: true }).catch(() => {});
    }
  }
}
