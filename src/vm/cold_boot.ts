/**
 * Cold boot: the image's own boot on the instance's run disk, with its EMUCFG disk.
 *
 * @module
 */
import { launch, waitReady } from "./boot.ts";
import { createOverlay } from "../qemu/qcow2_overlay.ts";
import { writeRecord } from "./record.ts";
import { vmSpec } from "./spec.ts";
import { provideVarsStore } from "../qemu/firmware.ts";
import { stopInstance } from "./stop.ts";
import type { BootContext, StartResult } from "./start_types.ts";
import { PhaseTimer } from "./timings.ts";
import {
  becomeHealthy,
  newRecord,
  notReadyError,
  runPaths,
  settleGuest,
  writeRuntimeDisk,
} from "./_boot.ts";
import { exists } from "../exists.ts";

/** Cold boot: the image's own boot, on the instance's run disk. */
export async function coldBoot(ctx: BootContext): Promise<StartResult> {
  const { paths, profile, progress, options, image, probe } = ctx;
  progress(
    `cold-booting ${image.name} ${image.version} (${probe.accel.accel}, ${profile.vm.memory_mib} MiB, ${profile.vm.cpus} vCPU)`,
  );
  const timer = new PhaseTimer();
  const spec = await timer.time("prepare", async () => {
    // The spec first: what it refuses (missing firmware) is refused before any file is made.
    const spec = vmSpec(profile, image, probe, runPaths(ctx, paths.runtimeIso, false));
    if (!(await exists(paths.runDisk))) {
      await createOverlay(image.disk, paths.runDisk);
    }
    await provideVarsStore(spec.firmware, probe.firmware?.vars);
    await writeRuntimeDisk(paths.runtimeIso, options.name, profile, ctx.ports);
    await Deno.writeTextFile(paths.serialLog, "");
    return spec;
  });
  const pid = await timer.time("launch", () => launch(probe.qemu.path, spec));
  const record = newRecord(ctx, pid, "cold", null, paths.runtimeIso);
  await timer.time("record", () => writeRecord(paths.record, record));
  const timeoutMs = options.healthTimeoutMs ?? 300_000;
  try {
    // The guest's own boot, up to its agent answering.
    await timer.time("boot", () =>
      waitReady({
        qgaSocket: paths.qgaSocket,
        checks: [],
        ports: ctx.ports,
        timeoutMs,
        signal: options.signal,
        onProgress: progress,
      }));
    const secrets = await settleGuest(ctx, timer, { resumed: false });
    return await becomeHealthy(
      ctx,
      record,
      timer,
      secrets,
      Math.max(1000, timeoutMs - timer.elapsed()),
    );
  } catch (err) {
    record.state = "unhealthy";
    await writeRecord(paths.record, record);
    const left = options.stopOnFailure
      ? "The VM was stopped."
      : `The VM is left running: \`emu logs --name ${options.name}\`, then \`emu stop --name ${options.name}\`.`;
    // The serial log is read before a stop can clear it.
    const failure = await notReadyError(
      err,
      paths.serialLog,
      "health_timeout",
      (message) => message,
      `${left} Raise the wait with --timeout SECONDS if the guest is just slow.`,
    );
    if (options.stopOnFailure) {
      await stopInstance({ settings: options.settings, name: options.name, lockHeld: true });
    }
    throw failure;
  }
}
