/**
 * Capture (docs/architecture.md, «Capture»): cold boot on a fresh capture disk, wait until healthy,
 * save RAM and device state to a mapped-ram file, and publish the snapshot directory atomically.
 * The capture disk is frozen read-only and backs every resume, so restored RAM always meets the
 * disk it was captured with. A previous good snapshot stays usable until the new one is complete.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { join } from "node:path";
import type { ImageInfo } from "../artifact/image_json.ts";
import { ensureRuntimeDir } from "../config/private_dir.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import { killAndWait, processExists } from "../qemu/process.ts";
import type { ProbeResult } from "../qemu/probe.ts";
import { launch, qemuGoneError, waitReady } from "./boot.ts";
import { setGuestClock } from "./guest_clock.ts";
import { QgaClient } from "../protocol/mod.ts";
import { InstanceLock } from "./lock.ts";
import { migrationChannels, saveToFileAndQuit, syncStateFile } from "./migration.ts";
import { createOverlay } from "../qemu/qcow2_overlay.ts";
import { freePort } from "./ports.ts";
import {
  imageSnapshotsDir,
  newSnapshotMeta,
  readSnapshot,
  snapshotFingerprint,
  type SnapshotMeta,
  snapshotMismatches,
  writeSnapshotMeta,
} from "./snapshot.ts";
import { firmwareIdentity, vmSpec } from "./spec.ts";
import { provideVarsStore } from "../qemu/firmware.ts";
import { compressState } from "./state_file.ts";
import { SNAPSHOT_FILES } from "../config/filenames.ts";
import { notReadyError, writeRuntimeDisk } from "./_boot.ts";

/** Options of {@linkcode captureSnapshot}. */
export interface CaptureOptions {
  settings: Settings;
  profile: Profile;
  image: ImageInfo;
  probe: ProbeResult;
  /** Capture again even when a good snapshot exists. */
  force?: boolean;
  /** Keep the guest's RAM zstd-compressed (`ram.zst`); the first resume decompresses it. */
  compress?: boolean;
  healthTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (text: string) => void;
}

/** A snapshot ready to resume. */
export interface Snapshot {
  dir: string;
  meta: SnapshotMeta;
  /** It existed already; nothing was captured. */
  reused: boolean;
}

/** Where the snapshot for this profile, image and probe lives, and its fingerprint. */
export function snapshotLocation(
  settings: Settings,
  profile: Profile,
  image: ImageInfo,
  probe: ProbeResult,
) {
  const placeholder = vmSpec(profile, image, probe, placeholderRun(profile));
  const firmware = firmwareIdentity(placeholder, probe);
  const fingerprint = snapshotFingerprint({
    qemuVersion: probe.qemu.versionText,
    imageSha256: image.sha256,
    imageVersion: image.version,
    spec: placeholder,
    firmware,
  });
  return {
    dir: join(imageSnapshotsDir(settings.layout.snapshots, image), fingerprint),
    fingerprint,
    spec: placeholder,
    firmware,
  };
}

function placeholderRun(profile: Profile) {
  return {
    disk: "/d",
    runtimeIso: "/r",
    qmpSocket: "/q",
    qgaSocket: "/g",
    serialLog: "/s",
    pidFile: "/p",
    name: "x",
    forwards: profile.ports,
  };
}

/** Captures (or reuses) the snapshot for `profile` on `image`. */
export async function captureSnapshot(options: CaptureOptions): Promise<Snapshot> {
  const { settings, profile, image, probe } = options;
  const progress = options.onProgress ?? (() => {});
  const location = snapshotLocation(settings, profile, image, probe);
  const parent = imageSnapshotsDir(settings.layout.snapshots, image);
  await Deno.mkdir(parent, { recursive: true });
  // One capture per image at a time: a second emu waits, then reuses the result.
  using _lock = await InstanceLock.acquire(
    join(parent, ".lock"),
    `the snapshots of ${image.name}`,
    {
      waitMs: 600_000,
      signal: options.signal,
    },
  );
  await cleanStaleCaptures(parent, settings.runtimeDir);
  const existing = await readSnapshot(location.dir);
  if (existing && !existing.bad && !options.force) {
    const mismatches = snapshotMismatches(existing, {
      qemuVersion: probe.qemu.versionText,
      imageSha256: image.sha256,
      imageVersion: image.version,
      spec: location.spec,
      firmware: location.firmware,
    });
    if (mismatches.length === 0) return { dir: location.dir, meta: existing, reused: true };
    progress(`the snapshot does not match this host (${mismatches.join("; ")}): recapturing`);
  } else if (existing?.bad && !options.force) {
    progress(`the snapshot was marked bad (${existing.bad.reason.split("\n")[0]}): recapturing`);
  }
  if (!probe.snapshots.supported) {
    throw new EmuError("snapshot_failed", `Cannot capture a snapshot: ${probe.snapshots.reason}`, {
      hint: "Install QEMU 9.0 or later (emu doctor shows how).",
    });
  }

  const id = crypto.randomUUID().slice(0, 8);
  const staging = join(parent, `.capture-${id}`);
  await Deno.mkdir(staging, { recursive: true });
  ensureRuntimeDir(settings.runtimeDir);
  // Capture runs on free ephemeral ports: host ports are not guest state, and the
  // profile's may be taken by a running instance.
  const forwards = Object.fromEntries(
    Object.entries(profile.ports).map(([n, p]) => [n, { guest: p.guest, host: freePort() }]),
  );
  const run = {
    disk: join(staging, SNAPSHOT_FILES.disk),
    runtimeIso: join(staging, SNAPSHOT_FILES.runtimeIso),
    qmpSocket: join(settings.runtimeDir, `capture-${id}.qmp`),
    qgaSocket: join(settings.runtimeDir, `capture-${id}.qga`),
    serialLog: join(staging, SNAPSHOT_FILES.log),
    pidFile: join(staging, SNAPSHOT_FILES.pid),
    name: `capture-${id}`,
    forwards,
    // The guest's RAM lives in the snapshot's own file from the first instruction on;
    // saving leaves it out, and a resume maps it instead of loading it.
    ramFile: { path: join(staging, SNAPSHOT_FILES.ram), shared: true },
  };
  const spec = vmSpec(profile, image, probe, run);
  let pid = 0;
  try {
    await createOverlay(image.disk, run.disk);
    // The capture's own NVRAM, kept beside its disk: every resume copies it.
    await provideVarsStore(spec.firmware, probe.firmware?.vars);
    // The runtime disk of a snapshot holds no per-instance values (no ports): those come
    // at rotation.
    await writeRuntimeDisk(run.runtimeIso, "capture", profile, {});
    progress(
      `capturing a snapshot of ${image.name} ${image.version} (once per image): a cold boot under ${probe.accel.accel}, ${
        probe.accel.accel === "tcg" ? "usually under a minute" : "usually a few seconds"
      }; later starts resume it in about a second`,
    );
    const started = performance.now();
    pid = await launch(probe.qemu.path, spec);
    await waitReady({
      qgaSocket: run.qgaSocket,
      checks: profile.health,
      ports: forwards,
      timeoutMs: options.healthTimeoutMs ?? 300_000,
      signal: options.signal,
      onProgress: progress,
    });
    // The clock, set once here as a resume will set it, tells the resume whether the
    // guest's `date` can do it (BusyBox's cannot); the captured guest has the host's time.
    // The agent connection stays open through the save (see attachAgent).
    await using qga = await QgaClient.connect(run.qgaSocket, {
      timeoutMs: 30_000,
      signal: options.signal,
    });
    const clock = await setGuestClock(qga, { timeoutMs: 10_000, signal: options.signal });
    progress("saving the device state (the guest's RAM is already in its file)");
    const saveStarted = performance.now();
    const stateInfo = await saveToFileAndQuit(
      run.qmpSocket,
      pid,
      join(staging, SNAPSHOT_FILES.state),
      { channels: migrationChannels(profile.vm.cpus), ramInFile: true },
    );
    pid = 0; // QEMU quit once the state was saved: later errors are not its.
    // The RAM file was written through the page cache: on disk before it is published.
    const ramPath = join(staging, SNAPSHOT_FILES.ram);
    const ramInfo = await syncStateFile(ramPath);
    const saveMs = Math.round(performance.now() - saveStarted);
    let ram: NonNullable<SnapshotMeta["ram"]> = { file: SNAPSHOT_FILES.ram, ...ramInfo };
    if (options.compress) {
      progress("compressing the guest RAM (zstd)");
      const compressed = await compressState(
        ramPath,
        join(staging, SNAPSHOT_FILES.compressedRam),
      );
      await Deno.remove(ramPath);
      ram = { ...ram, file: SNAPSHOT_FILES.compressedRam, compressed_bytes: compressed };
    }
    const meta = newSnapshotMeta({
      fingerprint: location.fingerprint,
      qemuVersion: probe.qemu.versionText,
      image,
      spec,
      stateFile: SNAPSHOT_FILES.state,
      state: stateInfo,
      ram,
      ms: saveMs,
      clock,
      firmware: location.firmware,
    });
    await Deno.chmod(run.disk, 0o444);
    await Deno.remove(run.pidFile).catch(() => {});
    await writeSnapshotMeta(staging, meta);
    // Publish: the old snapshot (bad, or forced) goes only once the new one is complete.
    const old = `${location.dir}.old-${id}`;
    const hadOld = await Deno.rename(location.dir, old).then(() => true, () => false);
    await Deno.rename(staging, location.dir);
    if (hadOld) await Deno.remove(old, { recursive: true }).catch(() => {});
    progress(
      `snapshot captured in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s (state saved in ${(meta.capture_ms / 1000).toFixed(1)} s)`,
    );
    return { dir: location.dir, meta, reused: false };
  } catch (caught) {
    const gone = await qemuGoneError(pid, "capture a snapshot", caught);
    // A guest whose RAM file finds no room dies (SIGBUS on the page it cannot get): a full
    // disk, said as such.
    const err = gone && freeBytes(staging) < FULL_BELOW_BYTES
      ? new EmuError(
        "disk_full",
        `Cannot capture a snapshot: the disk is full (the guest's RAM is written to ${
          join(staging, SNAPSHOT_FILES.ram)
        } as it boots; QEMU stopped when it found no room)`,
        {
          hint:
            "Free some space (`emu images` and `emu reset` free emu's own), then run the same command again; nothing was half-published.",
          cause: gone,
        },
      )
      : gone ?? caught;
    if (pid) await killAndWait(pid);
    for (const p of [run.qmpSocket, run.qgaSocket]) await Deno.remove(p).catch(() => {});
    // The serial log is read before the staging directory that holds it goes.
    const failure = await notReadyError(
      err,
      run.serialLog,
      "snapshot_failed",
      (message) => `Cannot capture a snapshot: ${message}`,
      "The image did not become healthy on a cold boot; `emu start --cold` boots it without a snapshot and leaves it running for `emu logs`.",
    );
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw failure;
  }
}

/** Less free space than this, after QEMU died mid-capture, means the disk filled up. */
const FULL_BELOW_BYTES = 64 * 2 ** 20;

/** Free bytes for an unprivileged writer on `path`'s filesystem (Infinity if unknown). */
function freeBytes(path: string): number {
  try {
    const fs = statfsSync(path);
    return Number(fs.bavail) * Number(fs.bsize);
  } catch {
    return Infinity;
  }
}

/**
 * Removes what an interrupted capture left (an emu killed mid-capture): its staging
 * directory and, if still running, its QEMU. Completed snapshots are never touched.
 */
export async function cleanStaleCaptures(parent: string, runtimeDir: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(parent));
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isDirectory || !/^\.capture-|\.old-/.test(e.name)) continue;
    const dir = join(parent, e.name);
    const pid = Number(
      (await Deno.readTextFile(join(dir, SNAPSHOT_FILES.pid)).catch(() => "")).trim(),
    );
    if (pid > 0 && processExists(pid)) {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
      if (cmdline.includes(dir)) Deno.kill(pid, "SIGKILL");
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    const id = /^\.capture-(.+)$/.exec(e.name)?.[1];
    if (id) {
      for (const ext of ["qmp", "qga"]) {
        await Deno.remove(join(runtimeDir, `capture-${id}.${ext}`)).catch(() => {});
      }
    }
  }
}
