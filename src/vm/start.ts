/**
 * Starting an instance (docs/architecture.md, «Start: resume and rotation»): lock, reuse a healthy
 * running instance, check ports before QEMU starts, then resume the user's suspended state, or the
 * image's snapshot (capturing it first if needed), or cold-boot — falling back to a cold boot, and
 * saying so, when a resume fails.
 *
 * @module
 */
import type { DownloadProgress } from "../artifact/download.ts";
import { ensureRuntimeDir } from "../config/private_dir.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import { killAndWait } from "../qemu/process.ts";
import { probeHost } from "../qemu/probe.ts";
import { captureSnapshot } from "./capture.ts";
import { type HealthResult, runHealthChecks, waitHealthy } from "./health.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, findInstance } from "./instance.ts";
import { InstanceLock } from "./lock.ts";
import { assertPortsFree } from "./ports.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { type BootContext, ResumeFailed } from "./_boot.ts";
import { coldBoot } from "./cold_boot.ts";
import { interruptedResume, resume, resumeSuspended } from "./resume.ts";
import { removeSecretsFile, writeSecretsFile } from "./secrets_file.ts";
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
  /** Keep the rotated secrets in the instance's 0600 secrets file for later `emu run`. */
  saveSecrets?: boolean;
  /** Progress lines. */
  onProgress?: (text: string) => void;
  /** Download progress when the image is pulled first. */
  onDownload?: (progress: DownloadProgress) => void;
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
): Record<string, { guest: number; host: number; scheme: string }> {
  const ports: Record<string, { guest: number; host: number; scheme: string }> = {};
  for (const [name, p] of Object.entries(profile.ports)) {
    ports[name] = {
      guest: p.guest,
      host: Object.hasOwn(overrides, name) ? overrides[name] : p.host,
      scheme: p.scheme,
    };
  }
  for (const name of Object.keys(overrides)) {
    if (!Object.hasOwn(profile.ports, name)) {
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

/** Starts (cold boots) instance `name`, or reports the healthy one already running. */
export async function startInstance(options: StartOptions): Promise<StartResult> {
  const { settings, profile, name } = options;
  const progress = options.onProgress ?? (() => {});
  const found = await findInstance(settings, name);
  const { paths } = found;
  await Deno.mkdir(paths.dir, { recursive: true });
  ensureRuntimeDir(settings.runtimeDir);
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
  // Whatever this start does, secrets saved for an earlier boot are no longer the guest's
  // (a suspended instance wakes with its own, so its file stays until we know).
  if (current.record?.state !== "suspended") await removeSecretsFile(paths.secretsFile);

  const ports = resolvePorts(profile, options.portOverrides);
  await assertPortsFree(ports, settings.layout.instances);
  const image = await resolveImage(profile, settings, {
    pull: true,
    onMessage: progress,
    onProgress: options.onDownload,
    signal: options.signal,
  });
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env: options.env,
    guestArch: image.arch,
  });
  const ctx: BootContext = { options, profile, image, probe, ports, paths, progress };
  const result = await bootInstance(ctx, current.record);
  if (result.record.boot !== "suspend") {
    await removeSecretsFile(paths.secretsFile);
    if (options.saveSecrets && Object.keys(result.secrets).length > 0) {
      await writeSecretsFile(paths.secretsFile, result.secrets);
    }
  }
  return result;
}

/** Resumes the suspended state, or the snapshot, or cold-boots; see the module doc. */
async function bootInstance(
  ctx: BootContext,
  previous: InstanceRecord | null,
): Promise<StartResult> {
  const { options, profile, image, probe, progress } = ctx;
  const { settings } = options;

  let fallback: string | null = null;
  if (previous?.state === "suspended" && !options.cold) {
    try {
      const resumed = await resumeSuspended(ctx, previous);
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
