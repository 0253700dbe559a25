/**
 * Resuming (docs/architecture.md, «Start: resume and rotation»): from the image's snapshot, or from
 * the state `emu suspend` saved; and recognising a QEMU left paused by an interrupted resume.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { QgaClient, QmpClient } from "../protocol/mod.ts";
import { killAndWait } from "../qemu/process.ts";
import { launch } from "./boot.ts";
import type { Snapshot } from "./capture.ts";
import { clearRuntimeFiles } from "./instance.ts";
import { loadState, migrationChannels } from "./migration.ts";
import { createOverlay } from "../qemu/qcow2_overlay.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { markSnapshotBad, readSnapshot, snapshotMismatches } from "./snapshot.ts";
import { suspendDir } from "./suspend.ts";
import { decompressStateSparse } from "./state_file.ts";
import { firmwareIdentity, vmSpec } from "./spec.ts";
import { provideVarsStore } from "../qemu/firmware.ts";
import type { VmSpec } from "../qemu/argv.ts";
import type { BootContext, StartResult } from "./start_types.ts";
import { ResumeFailed } from "./start_types.ts";
import { becomeHealthy, newRecord, runPaths, settleGuest, waitHealthyTimed } from "./_boot.ts";
import { EFI_VARS_FILE, SNAPSHOT_FILES } from "../config/filenames.ts";
import { PhaseTimer } from "./timings.ts";
import { exists } from "../exists.ts";
import type { ClockMethod } from "./guest_clock.ts";

/** How long loading a state may take. */
const LOAD_TIMEOUT_MS = 120_000;
/** How long the guest agent may take to answer once the guest runs. */
const AGENT_TIMEOUT_MS = 30_000;

/** One resume from a saved state: what differs between a snapshot and a suspended state. */
interface StateResume {
  /** The spec, with `-incoming defer`. */
  spec: VmSpec;
  /** Makes the run disk, when this resume needs a new one (a failure here is no fallback). */
  disk?: () => Promise<void>;
  /** The state file to load (decompressed once, if need be). */
  statePath: () => Promise<string>;
  /** The guest's RAM is in its own file (`spec.ramFile`), not in the state. */
  ramInFile?: boolean;
  boot: "resume" | "suspend" | "checkpoint";
  /** The checkpoint restored, if this is a restore. */
  checkpoint?: string;
  /** The snapshot fingerprint the instance record names. */
  snapshot: string | null;
  /** How the guest's clock could be set when the state was saved, if known. */
  clock?: ClockMethod;
  /** Rotate secrets after the load (a suspended state keeps the user's). */
  rotate: boolean;
  /** The progress line once the state is loaded. */
  loaded: (seconds: string) => string;
  /** Runs once the state is loaded (before the guest is settled). */
  afterLoad?: () => Promise<void>;
  /** Cleans up after a failure; returns the reason the start falls back. */
  failed: (err: Error, loaded: boolean) => Promise<string>;
}

/**
 * The one sequence every resume follows: launch QEMU with `-incoming defer`, record the
 * instance, load the state over QMP (same capabilities as the save), settle the guest
 * (clock, rotation) and wait until healthy. Any failure stops that QEMU, clears its
 * sockets, lets the caller clean up, and becomes a {@linkcode ResumeFailed}: the start
 * falls back instead of failing.
 */
async function resumeFromState(ctx: BootContext, r: StateResume): Promise<StartResult> {
  const { paths, profile, progress } = ctx;
  const timer = new PhaseTimer();
  let pid = 0;
  let loaded = false;
  let agent: Promise<QgaClient> | undefined;
  const stopHealth = new AbortController();
  try {
    // Inside the fallback: a snapshot whose disk or variable store is gone fails here.
    await timer.time("prepare", async () => {
      await Deno.writeTextFile(paths.serialLog, "");
      await r.disk?.();
    });
    const statePath = await timer.time("prepare", r.statePath);
    pid = await timer.time("launch", () => launch(ctx.probe.qemu.path, r.spec));
    const record = () =>
      newRecord(ctx, pid, r.boot, r.snapshot, r.spec.runtimeIso, r.checkpoint ?? null);
    await timer.time("record", () => writeRecord(paths.record, record()));
    // The agent connection opens while the state loads: its sync waits in the channel
    // and the guest answers as soon as it runs.
    agent = QgaClient.connect(paths.qgaSocket, {
      timeoutMs: LOAD_TIMEOUT_MS + AGENT_TIMEOUT_MS,
      signal: ctx.options.signal,
    });
    agent.catch(() => {});
    {
      await using qmp = await timer.time(
        "qmp",
        () => QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 }),
      );
      await loadState(qmp, statePath, {
        channels: migrationChannels(profile.vm.cpus),
        timeoutMs: LOAD_TIMEOUT_MS,
        timer,
        ramInFile: r.ramInFile,
      });
    }
    loaded = true;
    await r.afterLoad?.();
    progress(r.loaded((timer.elapsed() / 1000).toFixed(2)));
    const rotates = r.rotate && !ctx.options.noRotation && profile.rotate !== undefined;
    // Health must follow a rotation (the stack answers with the new secrets); with
    // nothing to rotate it is polled while the clock is set.
    const signal = ctx.options.signal
      ? AbortSignal.any([ctx.options.signal, stopHealth.signal])
      : stopHealth.signal;
    const health = rotates
      ? undefined
      : waitHealthyTimed({ ...ctx, options: { ...ctx.options, signal } }, timer);
    health?.catch(() => {});
    const secrets = await settleGuest(
      rotates ? ctx : { ...ctx, options: { ...ctx.options, noRotation: true } },
      timer,
      { resumed: true, agent, clock: r.clock },
    );
    return await becomeHealthy(ctx, record(), timer, secrets, undefined, health);
  } catch (err) {
    stopHealth.abort();
    if (pid) await killAndWait(pid);
    await agent?.then((qga) => qga.close(), () => {});
    await clearRuntimeFiles(paths);
    // A port taken as QEMU started says nothing about the state: no fallback, no blame.
    if (err instanceof EmuError && err.code === "port_in_use") throw err;
    throw new ResumeFailed(await r.failed(err as Error, loaded));
  }
}

/** Resume from `snapshot` (docs/architecture.md, «Start: resume and rotation», steps 2–4). */
export async function resume(ctx: BootContext, snapshot: Snapshot): Promise<StartResult> {
  const { profile, progress } = ctx;
  // The guest's RAM is the snapshot's RAM file, mapped privately: pages come in as the
  // guest touches them, its writes stay in this QEMU, the file stays as captured.
  const spec = vmSpec(profile, ctx.image, ctx.probe, {
    ...runPaths(ctx, join(snapshot.dir, SNAPSHOT_FILES.runtimeIso), true),
    ramFile: { path: join(snapshot.dir, SNAPSHOT_FILES.ram), shared: false },
  });
  return await resumeFromState(ctx, {
    spec,
    ramInFile: true,
    disk: () => runOn(ctx, spec, snapshot.dir),
    // The device state is never compressed (a few hundred KiB); the RAM file may be.
    statePath: async () => {
      await ramFileReady(snapshot, progress);
      return join(snapshot.dir, snapshot.meta.state.file);
    },
    boot: "resume",
    snapshot: snapshot.meta.fingerprint,
    clock: snapshot.meta.clock,
    rotate: true,
    loaded: (s) => `resumed snapshot ${snapshot.meta.fingerprint} in ${s} s`,
    failed: async (err, loaded) => {
      // A state that did not load is recaptured, not retried at every start.
      if (!loaded) await markSnapshotBad(snapshot.dir, err.message);
      return `resume failed (${err.message.split("\n")[0]})${
        loaded ? "" : "; snapshot marked bad, it will be recaptured"
      }`;
    },
  });
}

/**
 * Gives the run a fresh overlay of the disk saved in `dir` (a snapshot's or a
 * checkpoint's) and, for UEFI firmware, a copy of the variable store saved with it.
 *
 * @throws {Error} naming the file when either is missing: the resume fails there, before
 * QEMU starts, and falls back (or is refused) like any other failed resume.
 */
async function runOn(ctx: BootContext, spec: VmSpec, dir: string): Promise<void> {
  const disk = join(dir, SNAPSHOT_FILES.disk);
  const vars = join(dir, EFI_VARS_FILE);
  if (!(await exists(disk))) throw new Error(`its disk ${disk} is missing`);
  // The variables saved with the RAM go with it: the firmware's template would not do.
  if (spec.firmware?.vars && !(await exists(vars))) {
    throw new Error(`its UEFI variable store ${vars} is missing`);
  }
  await Deno.remove(ctx.paths.runDisk).catch(() => {});
  await createOverlay(disk, ctx.paths.runDisk);
  await provideVarsStore(spec.firmware, ctx.probe.firmware?.vars, vars);
}

/**
 * Makes sure the snapshot's RAM file is there, whole: decompressed once (sparse) from
 * `ram.zst` when the snapshot was captured compressed, and exactly the guest's RAM in
 * size (a short file would fault the guest when it touches a page past its end).
 *
 * @throws {Error} when it is missing or of another size: the resume fails, the snapshot
 * is marked bad and recaptured.
 */
async function ramFileReady(
  snapshot: Snapshot,
  progress: (text: string) => void,
): Promise<void> {
  const ram = snapshot.meta.ram;
  if (ram === undefined) throw new Error("the snapshot has no RAM file");
  const raw = join(snapshot.dir, SNAPSHOT_FILES.ram);
  if (ram.file === SNAPSHOT_FILES.compressedRam && !(await exists(raw))) {
    progress("decompressing the snapshot's RAM (once; sparse)");
    const started = performance.now();
    const result = await decompressStateSparse(
      join(snapshot.dir, SNAPSHOT_FILES.compressedRam),
      raw,
    );
    progress(
      `decompressed ${(result.logicalBytes / 2 ** 20).toFixed(0)} MiB (${
        (result.dataBytes / 2 ** 20).toFixed(0)
      } MiB of data) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  const size = await Deno.stat(raw).then((i) => i.size, () => -1);
  const expected = snapshot.meta.memory_mib * 2 ** 20;
  if (size !== expected) {
    throw new Error(
      size < 0
        ? `its RAM file ${raw} is missing`
        : `its RAM file ${raw} is ${size} bytes, the guest's RAM ${expected}`,
    );
  }
}

/**
 * Resumes the state `emu suspend` saved, on the instance's own run disk, without
 * rotation (the secrets are the user's). Returns `null` when there is no usable suspended
 * state; the state is deleted either way, since the disk moves on from here.
 */
export async function resumeSuspended(
  ctx: BootContext,
  previous: InstanceRecord,
): Promise<StartResult | null> {
  const { paths, profile } = ctx;
  const dir = suspendDir(paths.dir);
  const meta = await readSnapshot(dir);
  const runtimeIso = previous.runtime_iso ?? paths.runtimeIso;
  const spec = vmSpec(profile, ctx.image, ctx.probe, runPaths(ctx, runtimeIso, true));
  if (meta === null || !(await exists(paths.runDisk))) return null;
  const mismatches = snapshotMismatches(meta, {
    qemuVersion: ctx.probe.qemu.versionText,
    imageSha256: ctx.image.sha256,
    imageVersion: ctx.image.version,
    spec,
    firmware: firmwareIdentity(spec, ctx.probe),
  });
  if (mismatches.length > 0) {
    await Deno.remove(dir, { recursive: true });
    throw new ResumeFailed(
      `the suspended state no longer matches this host (${mismatches.join("; ")})`,
    );
  }
  return await resumeFromState(ctx, {
    spec,
    statePath: () => Promise.resolve(join(dir, meta.state.file)),
    boot: "suspend",
    snapshot: previous.snapshot,
    rotate: false,
    loaded: (s) => `resumed the suspended state in ${s} s (secrets kept)`,
    // The disk moves on from here: the suspended state is spent either way.
    afterLoad: () => Deno.remove(dir, { recursive: true }),
    failed: async (err) => {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      return `could not resume the suspended state (${err.message.split("\n")[0]})`;
    },
  });
}

/**
 * Restores checkpoint `found` (src/vm/checkpoint.ts) on a fresh overlay of its disk: no
 * rotation (the guest keeps the checkpoint's secrets). No fallback: a failure stops that
 * QEMU and is `snapshot_failed`, the checkpoint unchanged.
 */
export async function resumeCheckpoint(
  ctx: BootContext,
  found: { name: string; dir: string; meta: Snapshot["meta"] },
  snapshot: string | null,
): Promise<StartResult> {
  const { profile } = ctx;
  const spec = vmSpec(
    profile,
    ctx.image,
    ctx.probe,
    runPaths(ctx, join(found.dir, SNAPSHOT_FILES.runtimeIso), true),
  );
  try {
    return await resumeFromState(ctx, {
      spec,
      disk: () => runOn(ctx, spec, found.dir),
      statePath: () => Promise.resolve(join(found.dir, found.meta.state.file)),
      boot: "checkpoint",
      checkpoint: found.name,
      snapshot,
      clock: found.meta.clock,
      rotate: false,
      loaded: (s) => `restored checkpoint ${found.name} in ${s} s (its secrets kept)`,
      failed: (err) => Promise.resolve(err.message.split("\n")[0]),
    });
  } catch (err) {
    if (!(err instanceof ResumeFailed)) throw err;
    throw new EmuError(
      "snapshot_failed",
      `Cannot restore checkpoint ${found.name}: ${err.message}`,
      {
        hint:
          "The instance is stopped and the checkpoint unchanged; `emu start` starts it from the image's snapshot.",
      },
    );
  }
}
