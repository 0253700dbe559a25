/**
 * Starting an instance by cold boot: lock, reuse a healthy running instance, check ports
 * before QEMU starts, run overlay on the image, runtime ISO (EMUCFG), the SPEC §8
 * command line, then wait for the guest agent and every health check.
 *
 * @module
 */
import { join } from "node:path";
import type { ImageInfo } from "../artifact/image_json.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { CommandError, EmuError } from "../errors.ts";
import { writeIsoFile } from "../iso/mod.ts";
import { QgaClient, QmpClient } from "../protocol/mod.ts";
import { killAndWait } from "../qemu/process.ts";
import { probeHost, type ProbeResult } from "../qemu/probe.ts";
import { launch, waitReady } from "./boot.ts";
import { captureSnapshot, type Snapshot, SNAPSHOT_FILES } from "./capture.ts";
import { type HealthResult, runHealthChecks, waitHealthy } from "./health.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, findInstance } from "./instance.ts";
import { InstanceLock } from "./lock.ts";
import { assertPortsFree } from "./ports.ts";
import { loadState, migrationChannels } from "./migration.ts";
import { createOverlay } from "./overlay.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { generateSecrets, keyValueLines } from "./secrets.ts";
import { serialTail } from "./serial.ts";
import { markSnapshotBad, readSnapshot, snapshotMismatches } from "./snapshot.ts";
import { suspendDir } from "./suspend.ts";
import { type RunPaths, vmSpec } from "./spec.ts";
import { stopInstance } from "./stop.ts";

/** Options of {@linkcode startInstance}. */
export interface StartOptions {
  settings: Settings;
  profile: Profile;
  profilePath: string | null;
  name: string;
  /** `--port NAME=HOSTPORT` overrides. */
  portOverrides?: Record<string, number>;
  env: Record<string, string | undefined>;
  /** How long the guest may take to become healthy (default 300 s). */
  healthTimeoutMs?: number;
  /** Stop the VM when it does not become healthy (default: leave it for `emu logs`). */
  stopOnFailure?: boolean;
  /** How long to wait for another emu holding the instance lock (default 30 s). */
  lockWaitMs?: number;
  /** Boot from scratch even when a snapshot could be resumed. */
  cold?: boolean;
  /** Skip secret rotation (faster; the guest keeps its current secrets). */
  noRotation?: boolean;
  /** Progress lines. */
  onProgress?: (text: string) => void;
  signal?: AbortSignal;
}

/** What {@linkcode startInstance} did. */
export interface StartResult {
  record: InstanceRecord;
  /** The instance was already running and healthy; nothing was started. */
  alreadyRunning: boolean;
  health: HealthResult[];
  /** Launch to healthy, in milliseconds (0 when already running). */
  bootMs: number;
  /** The secrets rotated into the guest by this start (memory only; empty if none). */
  secrets: Record<string, string>;
  /** Why a resume was not used, if it was not (one line, for the user). */
  fallback: string | null;
}

/** Resolves host ports: the profile's, with `--port` overrides (unknown names refused). */
export function resolvePorts(
  profile: Profile,
  overrides: Record<string, number> = {},
): Record<string, { guest: number; host: number }> {
  const ports: Record<string, { guest: number; host: number }> = {};
  for (const [name, p] of Object.entries(profile.ports)) {
    ports[name] = { guest: p.guest, host: overrides[name] ?? p.host };
  }
  for (const name of Object.keys(overrides)) {
    if (profile.ports[name] === undefined) {
      throw new EmuError(
        "usage",
        `Cannot override port ${name}: the profile has no port named ${name}`,
        {
          hint: `Known ports: ${Object.keys(profile.ports).join(", ") || "none"}.`,
        },
      );
    }
  }
  const seen = new Map<number, string>();
  for (const [name, p] of Object.entries(ports)) {
    if (seen.has(p.host)) {
      throw new EmuError(
        "usage",
        `Cannot use host port ${p.host} for both ${seen.get(p.host)} and ${name}`,
      );
    }
    seen.set(p.host, name);
  }
  return ports;
}

/** The `runtime.env` written to the EMUCFG disk: instance name, host ports, profile values. Never secrets. */
export function runtimeEnv(
  name: string,
  profile: Profile,
  ports: Record<string, { host: number }>,
): string {
  const lines = [`EMU_INSTANCE=${name}`, `EMU_PROFILE=${profile.name}`];
  for (const [port, p] of Object.entries(ports)) {
    lines.push(`EMU_${port.toUpperCase()}_HOST_PORT=${p.host}`);
  }
  for (const [key, value] of Object.entries(profile.runtime)) lines.push(`${key}=${value}`);
  return `${lines.join("\n")}\n`;
}

/** Starts (cold boots) instance `name`, or reports the healthy one already running. */
export async function startInstance(options: StartOptions): Promise<StartResult> {
  const { settings, profile, name } = options;
  const progress = options.onProgress ?? (() => {});
  const found = await findInstance(settings, name);
  const { paths } = found;
  await Deno.mkdir(paths.dir, { recursive: true });
  await Deno.mkdir(settings.runtimeDir, { recursive: true, mode: 0o700 });
  using _lock = await InstanceLock.acquire(paths.lock, `instance ${name}`, {
    waitMs: options.lockWaitMs ?? 30_000,
    signal: options.signal,
  });

  // Re-read under the lock: another emu may have started it meanwhile.
  const current = await findInstance(settings, name);
  if (current.alive && current.record && await interruptedResume(current.paths.qmpSocket)) {
    // An emu killed between launching a resume and loading its state left QEMU waiting
    // for an incoming migration that will never come: start over.
    progress(
      `instance ${name}: an interrupted start left QEMU (pid ${current.record.pid}) waiting; restarting`,
    );
    await killAndWait(current.record.pid!);
  } else if (current.alive && current.record) {
    const record = current.record;
    let health = await runHealthChecks(profile.health, record.ports);
    if (!health.every((h) => h.ok)) {
      // Still booting (an emu killed mid-start left it), or unhealthy: wait like a start would.
      progress(`instance ${name} is running (pid ${record.pid}) but not healthy yet; waiting`);
      try {
        health = await waitHealthy(profile.health, record.ports, {
          timeoutMs: options.healthTimeoutMs ?? 300_000,
          signal: options.signal,
          onWaiting: progress,
        });
      } catch (err) {
        throw new EmuError(
          "instance_not_running",
          `Cannot start instance ${name}: it is already running but not healthy: ${
            (err as Error).message
          }`,
          {
            hint:
              `See \`emu logs --name ${name}\`, or restart it: \`emu stop --name ${name}\`, then \`emu start\`.`,
          },
        );
      }
      record.state = "running";
      record.healthy_at = new Date().toISOString();
      await writeRecord(paths.record, record);
    }
    return { record, alreadyRunning: true, health, bootMs: 0, secrets: {}, fallback: null };
  }
  if (current.record?.pid && !current.alive) {
    progress(`instance ${name}: its QEMU (pid ${current.record.pid}) is gone; cleaning up`);
  }
  await clearRuntimeFiles(paths);

  const ports = resolvePorts(profile, options.portOverrides);
  await assertPortsFree(ports, settings.layout.instances);
  const image = await resolveImage(profile, settings, {
    pull: true,
    onMessage: progress,
    signal: options.signal,
  });
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env: options.env,
    guestArch: image.arch,
  });
  const ctx: BootContext = { options, profile, image, probe, ports, paths, progress };

  let fallback: string | null = null;
  if (current.record?.state === "suspended" && !options.cold) {
    try {
      const resumed = await resumeSuspended(ctx, current.record);
      if (resumed !== null) return resumed;
    } catch (err) {
      if (!(err instanceof ResumeFailed)) throw err;
      fallback = err.message;
      progress(`${err.message}; starting fresh from the snapshot`);
    }
  }
  if (!options.cold && probe.snapshots.supported) {
    try {
      const snapshot = await captureSnapshot({
        settings,
        profile,
        image,
        probe,
        healthTimeoutMs: options.healthTimeoutMs,
        signal: options.signal,
        onProgress: progress,
      });
      return await resume(ctx, snapshot);
    } catch (err) {
      if (!(err instanceof ResumeFailed)) throw err;
      fallback = err.message;
      progress(`${err.message}; cold-booting instead`);
    }
  } else if (!options.cold) {
    fallback = probe.snapshots.reason;
  }
  const result = await coldBoot(ctx);
  return { ...result, fallback };
}

interface BootContext {
  options: StartOptions;
  profile: Profile;
  image: ImageInfo;
  probe: ProbeResult;
  ports: Record<string, { guest: number; host: number }>;
  paths: Awaited<ReturnType<typeof findInstance>>["paths"];
  progress: (text: string) => void;
}

/** A resume that failed after launch; the caller cold-boots instead. */
class ResumeFailed extends Error {}

function runPaths(ctx: BootContext, runtimeIso: string, incoming: boolean): RunPaths {
  const { paths, options, ports } = ctx;
  return {
    disk: paths.runDisk,
    runtimeIso,
    qmpSocket: paths.qmpSocket,
    qgaSocket: paths.qgaSocket,
    serialLog: paths.serialLog,
    pidFile: paths.pidFile,
    name: options.name,
    forwards: ports,
    incoming,
  };
}

function newRecord(
  ctx: BootContext,
  pid: number,
  boot: "cold" | "resume" | "suspend",
  snapshot: string | null,
  runtimeIso: string,
): InstanceRecord {
  return {
    schema: 1,
    name: ctx.options.name,
    state: "starting",
    pid,
    qemu: ctx.probe.qemu.path,
    ports: ctx.ports,
    sockets: { qmp: ctx.paths.qmpSocket, qga: ctx.paths.qgaSocket },
    image: {
      dir: ctx.image.dir,
      name: ctx.image.name,
      version: ctx.image.version,
      sha256: ctx.image.sha256,
    },
    snapshot,
    boot,
    runtime_iso: runtimeIso,
    profile: ctx.options.profilePath,
    started_at: new Date().toISOString(),
    healthy_at: null,
    stopped_at: null,
    stop_method: null,
  };
}

/** Resume from `snapshot` (SPEC §7 steps 3–6). Failures become {@linkcode ResumeFailed}. */
async function resume(ctx: BootContext, snapshot: Snapshot): Promise<StartResult> {
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
    pid = await launch(ctx.probe.qemu.path, spec);
    await writeRecord(
      paths.record,
      newRecord(ctx, pid, "resume", snapshot.meta.fingerprint, spec.runtimeIso),
    );
    const qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
    try {
      await loadState(qmp, join(snapshot.dir, SNAPSHOT_FILES.state), {
        channels: migrationChannels(profile.vm.cpus),
        timeoutMs: 120_000,
      });
    } finally {
      await qmp.close();
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
 * After boot or resume: set the guest clock (a resumed guest wakes with capture time),
 * then pipe fresh secrets and run-time values to the rotate command. Returns the secrets.
 */
async function settleGuest(ctx: BootContext, resumed: boolean): Promise<Record<string, string>> {
  const { profile, options, progress } = ctx;
  const qga = await QgaClient.connect(ctx.paths.qgaSocket, {
    timeoutMs: 30_000,
    signal: options.signal,
  });
  try {
    if (resumed) {
      try {
        await qga.setTime(undefined, { timeoutMs: 10_000 });
      } catch (err) {
        // The agent sets the system clock, then runs hwclock; a guest without hwclock
        // still has the right time, so only that second step may fail quietly.
        if (!(err instanceof CommandError && /hardware clock/.test(err.description))) throw err;
        progress("guest clock set (the guest has no hwclock to update)");
      }
    }
    if (options.noRotation || profile.rotate === undefined) return {};
    const secrets = generateSecrets(profile.secrets);
    const values: Record<string, string> = { ...secrets, EMU_INSTANCE: options.name };
    for (const [port, p] of Object.entries(ctx.ports)) {
      values[`EMU_${port.toUpperCase()}_HOST_PORT`] = String(p.host);
    }
    Object.assign(values, profile.runtime);
    progress(
      `rotating ${Object.keys(secrets).length} secret${
        Object.keys(secrets).length === 1 ? "" : "s"
      }`,
    );
    const result = await qga.exec(profile.rotate.command, {
      input: new TextEncoder().encode(keyValueLines(values)),
      timeoutMs: profile.rotate.timeout_s * 1000,
    });
    if (result.exitCode !== 0) {
      const stderr = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3).join(
        " / ",
      );
      throw new EmuError(
        "rotation_failed",
        `Cannot rotate secrets: ${profile.rotate.command} exited ${
          result.exitCode ?? `on signal ${result.signal}`
        }${stderr ? `: ${stderr}` : ""}`,
        {
          hint:
            "Fix the image's rotate command (it reads KEY=VALUE lines on stdin and must exit 0).",
        },
      );
    }
    return secrets;
  } finally {
    await qga.close();
  }
}

/** Cold boot: the image's own boot, on the instance's run disk. */
async function coldBoot(ctx: BootContext): Promise<StartResult> {
  const { paths, profile, progress, options, image, probe } = ctx;
  if (!(await Deno.stat(paths.runDisk).then(() => true, () => false))) {
    await createOverlay(probe.qemu.img, image.disk, paths.runDisk);
  }
  await writeIsoFile(
    [{
      path: "runtime.env",
      data: new TextEncoder().encode(runtimeEnv(options.name, profile, ctx.ports)),
    }],
    paths.runtimeIso,
    { label: "EMUCFG" },
  );
  const spec = vmSpec(profile, image, probe, runPaths(ctx, paths.runtimeIso, false));
  await Deno.writeTextFile(paths.serialLog, "");
  progress(
    `cold-booting ${image.name} ${image.version} (${probe.accel.accel}, ${profile.vm.memory_mib} MiB, ${profile.vm.cpus} vCPU)`,
  );
  const started = performance.now();
  const pid = await launch(probe.qemu.path, spec);
  const record = newRecord(ctx, pid, "cold", null, paths.runtimeIso);
  await writeRecord(paths.record, record);
  const timeoutMs = options.healthTimeoutMs ?? 300_000;
  try {
    await waitReady({
      qgaSocket: paths.qgaSocket,
      checks: [],
      ports: ctx.ports,
      timeoutMs,
      signal: options.signal,
      onProgress: progress,
    });
    const secrets = await settleGuest(ctx, false);
    return await becomeHealthy(
      ctx,
      record,
      started,
      secrets,
      Math.max(1000, timeoutMs - (performance.now() - started)),
    );
  } catch (err) {
    record.state = "unhealthy";
    await writeRecord(paths.record, record);
    const tail = await serialTail(paths.serialLog, 15);
    if (options.stopOnFailure) {
      await stopInstance({ settings: options.settings, name: options.name, lockHeld: true });
    }
    if (
      err instanceof EmuError &&
      (err.code === "health_timeout" || err.code === "protocol_timeout" ||
        err.code === "socket_unavailable")
    ) {
      const left = options.stopOnFailure
        ? "The VM was stopped."
        : `The VM is left running: \`emu logs --name ${options.name}\`, then \`emu stop --name ${options.name}\`.`;
      throw new EmuError(
        "health_timeout",
        `${err.message}\nLast serial console lines:\n${tail || "(empty)"}`,
        {
          hint: `${left} Raise the wait with --timeout SECONDS if the guest is just slow.`,
          cause: err,
        },
      );
    }
    throw err;
  }
}

/**
 * Whether the QEMU behind `qmpSocket` is not running its guest: paused in a resume that
 * never completed (waiting for state, or loaded but never continued), shut down, or
 * crashed. Such a QEMU is restarted rather than waited for.
 */
async function interruptedResume(qmpSocket: string): Promise<boolean> {
  try {
    const qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 3000 });
    try {
      return (await qmp.queryStatus({ timeoutMs: 3000 })).status !== "running";
    } finally {
      await qmp.close();
    }
  } catch {
    return false;
  }
}

/**
 * Resumes the state `emu suspend` saved, on the instance's own run disk, without
 * rotation (the secrets are the user's). Returns `null` when there is no usable suspended
 * state; the state is deleted either way, since the disk moves on from here.
 */
async function resumeSuspended(
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
    const qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 10_000 });
    try {
      await loadState(qmp, join(dir, meta.state.file), {
        channels: migrationChannels(profile.vm.cpus),
        timeoutMs: 120_000,
      });
    } finally {
      await qmp.close();
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

/** Waits for every health check, then records the instance as running. */
async function becomeHealthy(
  ctx: BootContext,
  record: InstanceRecord,
  started: number,
  secrets: Record<string, string>,
  timeoutMs = ctx.options.healthTimeoutMs ?? 300_000,
): Promise<StartResult> {
  const { options } = ctx;
  const health = await waitHealthy(ctx.profile.health, ctx.ports, {
    timeoutMs,
    signal: options.signal,
    onWaiting: ctx.progress,
  });
  record.state = "running";
  record.healthy_at = new Date().toISOString();
  await writeRecord(ctx.paths.record, record);
  return {
    record,
    alreadyRunning: false,
    health,
    bootMs: Math.round(performance.now() - started),
    secrets,
    fallback: null,
  };
}
