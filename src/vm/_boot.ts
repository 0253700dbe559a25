/**
 * What every way of starting shares (internal to `src/vm`): the boot context, the
 * instance record of a start, the run paths, settling the guest after boot or resume
 * (clock, secret rotation), and recording a healthy start.
 *
 * @module
 */
import type { Profile } from "../config/profile.ts";
import { CommandError, EmuError } from "../errors.ts";
import { QgaClient, type RunningExec } from "../protocol/mod.ts";
import { writeIsoFile } from "../iso/mod.ts";
import { serialTail } from "../qemu/serial_log.ts";
import { RUNTIME_ENV } from "../config/filenames.ts";
import { waitHealthy } from "./health.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { generateSecrets, keyValueLines } from "./secrets.ts";
import { instanceRunPaths, type RunPaths } from "./spec.ts";
import type { BootContext, StartResult } from "./start_types.ts";

/**
 * The run-time values a guest gets — the instance name, the profile's name, each host
 * port, the profile's `runtime` values; never secrets — built in this one place for the
 * EMUCFG disk of a boot and for the rotate command of a start.
 *
 * @example
 * ```ts
 * import { runtimeValues } from "./_boot.ts";
 * const v = runtimeValues("ci", { name: "shop", runtime: { MODE: "dev" } }, { api: { host: 36700 } });
 * if (JSON.stringify(v) !== '{"EMU_INSTANCE":"ci","EMU_PROFILE":"shop","EMU_API_HOST_PORT":"36700","MODE":"dev"}') throw new Error();
 * ```
 */
export function runtimeValues(
  name: string,
  profile: Pick<Profile, "name" | "runtime">,
  ports: Record<string, { host: number }>,
): Record<string, string> {
  const values: Record<string, string> = { EMU_INSTANCE: name, EMU_PROFILE: profile.name };
  for (const [port, p] of Object.entries(ports)) {
    values[`EMU_${port.toUpperCase()}_HOST_PORT`] = String(p.host);
  }
  return { ...values, ...profile.runtime };
}

/**
 * Writes the EMUCFG disk of a cold boot: `runtime.env`, the {@linkcode runtimeValues}
 * as lines, which the guest reads before its services start.
 */
export async function writeRuntimeDisk(
  path: string,
  name: string,
  profile: Pick<Profile, "name" | "runtime">,
  ports: Record<string, { host: number }>,
): Promise<void> {
  const data = new TextEncoder().encode(keyValueLines(runtimeValues(name, profile, ports)));
  await writeIsoFile([{ path: RUNTIME_ENV, data }], path, { label: "EMUCFG" });
}

/** The errors that mean "the guest did not become ready in time", not a fault of emu. */
const NOT_READY = new Set(["health_timeout", "protocol_timeout", "socket_unavailable"]);

/**
 * The error a cold boot (start or capture) reports when the guest did not become
 * ready: `code`, the message with the serial console's last lines (what the user needs
 * to see why), and `hint`. Any other error is returned as it is.
 */
export async function notReadyError(
  err: unknown,
  serialLog: string,
  code: "health_timeout" | "snapshot_failed",
  what: (message: string) => string,
  hint: string,
): Promise<unknown> {
  if (!(err instanceof EmuError) || !NOT_READY.has(err.code)) return err;
  const tail = await serialTail(serialLog, 15);
  return new EmuError(
    code,
    `${what(err.message)}\nLast serial console lines:\n${tail || "(empty)"}`,
    { hint, cause: err },
  );
}

export function runPaths(ctx: BootContext, runtimeIso: string, incoming: boolean): RunPaths {
  return instanceRunPaths(ctx.paths, ctx.options.name, ctx.ports, runtimeIso, incoming);
}

export function newRecord(
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

/**
 * After boot or resume: set the guest clock (a resumed guest wakes with capture time),
 * then pipe fresh secrets and run-time values to the rotate command. Returns the secrets.
 */
export async function settleGuest(
  ctx: BootContext,
  resumed: boolean,
): Promise<Record<string, string>> {
  const { profile, options, progress } = ctx;
  await using qga = await QgaClient.connect(ctx.paths.qgaSocket, {
    timeoutMs: 30_000,
    signal: options.signal,
  });
  // The rotate command starts first and runs while the agent sets the clock (which
  // waits for the hardware clock's next second): the two overlap instead of adding up.
  let rotation: RunningExec | null = null;
  let secrets: Record<string, string> = {};
  if (!options.noRotation && profile.rotate !== undefined) {
    secrets = generateSecrets(profile.secrets);
    const values = { ...secrets, ...runtimeValues(options.name, profile, ctx.ports) };
    progress(
      `rotating ${Object.keys(secrets).length} secret${
        Object.keys(secrets).length === 1 ? "" : "s"
      }`,
    );
    rotation = await qga.execStart(profile.rotate.command, {
      input: new TextEncoder().encode(keyValueLines(values)),
      timeoutMs: profile.rotate.timeout_s * 1000,
    });
  }
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
  if (rotation === null || profile.rotate === undefined) return {};
  const result = await rotation.wait();
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
        hint: "Fix the image's rotate command (it reads KEY=VALUE lines on stdin and must exit 0).",
      },
    );
  }
  return secrets;
}

/** Waits for every health check, then records the instance as running. */
export async function becomeHealthy(
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
