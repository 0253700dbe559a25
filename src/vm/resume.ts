/**
 * Resuming (docs/architecture.md, «Start: resume and rotation»): from the image's snapshot, or from
 * the state `emu suspend` saved; and recognising a QEMU left paused by an interrupted resume.
 *
 * @module
 */
import { join } from "node:path";
import { QmpClient } from "../protocol/mod.ts";
import { killAndWait } from "../qemu/process.ts";
import { launch } from "./boot.ts";
import type { Snapshot } from "./capture.ts";
import { clearRuntimeFiles } from "./instance.ts";
import { loadState, migrationChannels } from "./migration.ts";
import { createOverlay } from "../qemu/img.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { markSnapshotBad, readSnapshot, snapshotMismatches } from "./snapshot.ts";
import { suspendDir } from "./suspend.ts";
import { decompressStateSparse } from "./state_file.ts";
import { vmSpec } from "./spec.ts";
import type { BootContext, StartResult } from "./start_types.ts";
import { ResumeFailed } from "./start_types.ts";
import { becomeHealthy, newRecord, runPaths, settleGuest } from "./_boot.ts";
import { SNAPSHOT_FILES } from "../config/filenames.ts";

/**
 * Resume from `snapshot` (docs/architecture.md, «Start: resume and rotation», steps 2–4).
 * Failures become {@linkcode ResumeFailed}.
 */
export async function resume(ctx: BootContext, snapshot: Snapshot): Promise<StartResult> {
  const { paths, profile, progress } = ctx;
  await Deno.remove(paths.runDisk).catch(() => {});
  await createOverlay(ctx.probe.qemu.img, join(snapshot.dir, SNAPSHOT_FILES.disk), paths.runDisk);
  await Deno.writeTextFile(paths.serialLog, "");
  const spec = vmSpec(
    profile,
    ctx.image,
    ctx.probe,
    runPaths(ctx, join(snapshot.dir, SNAPSHOT_FILES.runtimeIso), true),
  );
  const started = performance.now();
  let pid = 0;
  let loaded = false;
  try {
    const statePath = await rawState(snapshot, progress);
    pid = await launch(ctx.probe.qemu.path, spec);
    await writeRecord(
      paths.record,
      newRecord(ctx, pid, "resume", snapshot.meta.fingerprint, spec.runtimeIso),
    );
    {
      await using qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
      await loadState(qmp, statePath, {
        channels: migrationChannels(profile.vm.cpus),
        timeoutMs: 120_000,
      });
    }
    loaded = true;
    progress(
      `resumed snapshot ${snapshot.meta.fingerprint} in ${
        ((performance.now() - started) / 1000).toFixed(2)
      } s`,
    );
    const secrets = await settleGuest(ctx, true);
    return await becomeHealthy(
      ctx,
      newRecord(ctx, pid, "resume", snapshot.meta.fingerprint, spec.runtimeIso),
      started,
      secrets,
    );
  } catch (err) {
    if (pid) await killAndWait(pid);
    await clearRuntimeFiles(paths);
    if (!loaded) await markSnapshotBad(snapshot.dir, (err as Error).message);
    throw new ResumeFailed(
      `resume failed (${(err as Error).message.split("\n")[0]})${
        loaded ? "" : "; snapshot marked bad, it will be recaptured"
      }`,
    );
  }
}

/**
 * The raw state file to load: `state.raw`, decompressed once (sparse) from `state.zst`
 * when the snapshot was captured compressed.
 */
async function rawState(snapshot: Snapshot, progress: (text: string) => void): Promise<string> {
  const raw = join(snapshot.dir, SNAPSHOT_FILES.state);
  if (snapshot.meta.state.file !== SNAPSHOT_FILES.compressedState) return raw;
  if (await Deno.stat(raw).then(() => true, () => false)) return raw;
  progress("decompressing the snapshot state (once; sparse)");
  const started = performance.now();
  const result = await decompressStateSparse(
    join(snapshot.dir, SNAPSHOT_FILES.compressedState),
    raw,
  );
  progress(
    `decompressed ${(result.logicalBytes / 2 ** 20).toFixed(0)} MiB (${
      (result.dataBytes / 2 ** 20).toFixed(0)
    } MiB of data) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return raw;
}

/**
 * Whether the QEMU behind `qmpSocket` is not running its guest: paused in a resume that
 * never completed (waiting for state, or loaded but never continued), shut down, or
 * crashed. Such a QEMU is restarted rather than waited for.
 */
export async function interruptedResume(qmpSocket: string): Promise<boolean> {
  try {
    await using qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 3000 });
    return (await qmp.queryStatus({ timeoutMs: 3000 })).status !== "running";
  } catch {
    return false;
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
  const { paths, profile, progress, options } = ctx;
  const dir = suspendDir(paths.dir);
  const meta = await readSnapshot(dir);
  const runtimeIso = previous.runtime_iso ?? paths.runtimeIso;
  const spec = vmSpec(profile, ctx.image, ctx.probe, runPaths(ctx, runtimeIso, true));
  if (meta === null || !(await Deno.stat(paths.runDisk).then(() => true, () => false))) return null;
  const mismatches = snapshotMismatches(meta, {
    qemuVersion: ctx.probe.qemu.versionText,
    imageSha256: ctx.image.sha256,
    imageVersion: ctx.image.version,
    spec,
  });
  if (mismatches.length > 0) {
    await Deno.remove(dir, { recursive: true });
    throw new ResumeFailed(
      `the suspended state no longer matches this host (${mismatches.join("; ")})`,
    );
  }
  await Deno.writeTextFile(paths.serialLog, "");
  const started = performance.now();
  let pid = 0;
  try {
    pid = await launch(ctx.probe.qemu.path, spec);
    await writeRecord(paths.record, newRecord(ctx, pid, "suspend", previous.snapshot, runtimeIso));
    {
      await using qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
      await loadState(qmp, join(dir, meta.state.file), {
        channels: migrationChannels(profile.vm.cpus),
        timeoutMs: 120_000,
      });
    }
    await Deno.remove(dir, { recursive: true });
    progress(
      `resumed the suspended state in ${
        ((performance.now() - started) / 1000).toFixed(2)
      } s (secrets kept)`,
    );
    await settleGuest({ ...ctx, options: { ...options, noRotation: true } }, true);
    return await becomeHealthy(
      ctx,
      newRecord(ctx, pid, "suspend", previous.snapshot, runtimeIso),
      started,
      {},
    );
  } catch (err) {
    if (pid) await killAndWait(pid);
    await clearRuntimeFiles(paths);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new ResumeFailed(
      `could not resume the suspended state (${(err as Error).message.split("\n")[0]})`,
    );
  }
}
