/**
 * Starting an instance (docs/architecture.md, «Start: resume and rotation»): lock, reuse a healthy
 * running instance, check ports before QEMU starts, then resume the user's suspended state, or the
 * image's snapshot (capturing it first if needed), or cold-boot — falling back to a cold boot, and
 * saying so, when a resume fails.
 *
 * @module
 */
import type { Profile } from "../config/profile.ts";
import { EmuError } from "../errors.ts";
import { probeHost } from "../qemu/probe.ts";
import { captureSnapshot, type Snapshot } from "./capture.ts";
import { runHealthChecks, waitHealthy } from "./health.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, lockInstance } from "./instance.ts";
import { assertPortsFree } from "./ports.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import type { BootContext, StartOptions, StartResult } from "./start_types.ts";
import { ResumeFailed } from "./start_types.ts";

export type { StartOptions, StartResult } from "./start_types.ts";
import { coldBoot } from "./cold_boot.ts";
import { resume, resumeSuspended } from "./resume.ts";
import { recoverInterrupted } from "./recover.ts";
import { removeSecretsFile, writeSecretsFile } from "./secrets_file.ts";
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
  using locked = await lockInstance(settings, name, {
    create: true,
    waitMs: options.lockWaitMs ?? 30_000,
    signal: options.signal,
  });
  const current = await recoverInterrupted(locked.found, progress);
  const { paths } = current;
  if (current.alive && current.record) {
    const record = current.record;
    let health = await runHealthChecks(profile.health, record.ports);
    if (!health.every((h) => h.ok)) {
      // A service that stopped, or a cold boot left running for `emu logs`: wait like a
      // start would (an interrupted start was already started again above).
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
    return {
      record,
      alreadyRunning: true,
      health,
      bootMs: 0,
      timings: {},
      secrets: {},
      fallback: null,
    };
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

/**
 * The ways a start can boot, as one value so that {@linkcode bootInstance}'s decisions
 * (which way, and what to fall back to) can be tested without QEMU.
 */
export interface BootSteps {
  /** Resumes the instance's own saved state; `null` when it cannot be used (stale). */
  resumeSuspended(ctx: BootContext, previous: InstanceRecord): Promise<StartResult | null>;
  /** The image's snapshot for this host, captured first when there is none. */
  snapshot(ctx: BootContext): Promise<Snapshot>;
  resume(ctx: BootContext, snapshot: Snapshot): Promise<StartResult>;
  coldBoot(ctx: BootContext): Promise<StartResult>;
}

/** The real steps. */
export const BOOT_STEPS: BootSteps = {
  resumeSuspended,
  snapshot: (ctx) =>
    captureSnapshot({
      settings: ctx.options.settings,
      profile: ctx.profile,
      image: ctx.image,
      probe: ctx.probe,
      healthTimeoutMs: ctx.options.healthTimeoutMs,
      signal: ctx.options.signal,
      onProgress: ctx.progress,
    }),
  resume,
  coldBoot,
};

/**
 * Resumes the suspended state, or the snapshot, or cold-boots; see the module doc. A
 * resume that fails ({@linkcode ResumeFailed}) falls back to the next way, and the
 * result says why in `fallback`; any other error ends the start.
 */
export async function bootInstance(
  ctx: BootContext,
  previous: InstanceRecord | null,
  steps: BootSteps = BOOT_STEPS,
): Promise<StartResult> {
  const { options, probe, progress } = ctx;
  let fallback: string | null = null;
  if (previous?.state === "suspended" && !options.cold) {
    try {
      const resumed = await steps.resumeSuspended(ctx, previous);
      if (resumed !== null) return resumed;
    } catch (err) {
      if (!(err instanceof ResumeFailed)) throw err;
      fallback = err.message;
      progress(`${err.message}; starting fresh from the snapshot`);
    }
  }
  if (!options.cold && probe.snapshots.supported) {
    try {
      // A suspended state that could not be used is said so even when the snapshot works.
      return { ...await steps.resume(ctx, await steps.snapshot(ctx)), fallback };
    } catch (err) {
      if (!(err instanceof ResumeFailed)) throw err;
      fallback = err.message;
      progress(`${err.message}; cold-booting instead`);
    }
  } else if (!options.cold) {
    fallback = probe.snapshots.reason;
  }
  const result = await steps.coldBoot(ctx);
  return { ...result, fallback };
}
