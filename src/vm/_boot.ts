/**
 * What every way of starting shares (internal to `src/vm`): the boot context, the
 * instance record of a start, the run paths, settling the guest after boot or resume
 * (clock, secret rotation), and recording a healthy start.
 *
 * @module
 */
import type { Profile } from "../config/profile.ts";
import { EmuError } from "../errors.ts";
import { QgaClient } from "../protocol/mod.ts";
import { serialTail } from "../qemu/serial_log.ts";
import { RUNTIME_ENV } from "../config/filenames.ts";
import { type HealthResult, waitHealthy } from "./health.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { generateSecrets, keyValueLines } from "./secrets.ts";
import { instanceRunPaths, type RunPaths } from "./spec.ts";
import type { BootContext, StartResult } from "./start_types.ts";
import type { PhaseTimer } from "./timings.ts";
import { type ClockMethod, setGuestClock } from "./guest_clock.ts";
import { withDeadline } from "../async.ts";

/** How long the guest agent may take to answer once the guest runs. */
const AGENT_WAIT_MS = 30_000;

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
  // Loaded here: a resume (most starts) writes no ISO.
  const { writeIsoFile } = await import("../iso/mod.ts");
  await writeIsoFile([{ path: RUNTIME_ENV, data }], path, { label: "EMUCFG" });
}

/** The errors that mean "the guest did not become ready in time", not a fault of emu. */
const NOT_READY = new Set(["health_timeout", "protocol_timeout", "socket_unavailable"]);

/**
 * The error a cold boot (start or capture) reports when the guest did not become
 * ready: `code`, the message with the serial console's last lines (what the user needs
 * to see why), and `hint`. A QEMU that exited under it (`qemu_failed`) keeps its code and
 * hint and gets the same lines. Any other error is returned as it is.
 */
export async function notReadyError(
  err: unknown,
  serialLog: string,
  code: "health_timeout" | "snapshot_failed",
  what: (message: string) => string,
  hint: string,
): Promise<unknown> {
  if (!(err instanceof EmuError)) return err;
  // QEMU died under the guest: what the guest said last is all there is to see why (a
  // daemonized QEMU's own stderr is gone).
  const died = err.code === "qemu_failed";
  if (!died && !NOT_READY.has(err.code)) return err;
  const tail = await serialTail(serialLog, 15);
  if (died && tail === "") return err;
  const lines = `\nLast serial console lines:\n${tail || "(empty)"}`;
  return died
    ? new EmuError(err.code, err.message + lines, { hint: err.hint, cause: err.cause })
    : new EmuError(code, what(err.message) + lines, { hint, cause: err });
}

export function runPaths(ctx: BootContext, runtimeIso: string, incoming: boolean): RunPaths {
  return instanceRunPaths(ctx.paths, ctx.options.name, ctx.ports, runtimeIso, incoming);
}

export function newRecord(
  ctx: BootContext,
  pid: number,
  boot: "cold" | "resume" | "suspend" | "checkpoint",
  snapshot: string | null,
  runtimeIso: string,
  checkpoint: string | null = null,
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
    checkpoint,
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
 * then pipe fresh secrets and run-time values to the rotate command and wait for it.
 * Returns the secrets.
 */
export async function settleGuest(
  ctx: BootContext,
  timer: PhaseTimer,
  how: {
    /** A resumed guest's clock is set first. */
    resumed: boolean;
    /** A connection to the agent already under way. */
    agent?: Promise<QgaClient>;
    /** How the clock was set at capture (skips a `date` the guest lacks). */
    clock?: ClockMethod;
  },
): Promise<Record<string, string>> {
  const { resumed, agent } = how;
  const { profile, options, progress } = ctx;
  // A connection opened earlier gets the same 30 s from here as a new one would.
  await using qga = await timer.time(
    "agent",
    () =>
      agent === undefined
        ? QgaClient.connect(ctx.paths.qgaSocket, {
          timeoutMs: AGENT_WAIT_MS,
          signal: options.signal,
        })
        : withDeadline<QgaClient>((resolve, reject) => {
          agent.then(resolve, reject);
          return () => {};
        }, {
          timeoutMs: AGENT_WAIT_MS,
          signal: options.signal,
          action: "wait for the guest agent",
          onTimeout: () =>
            new EmuError(
              "protocol_timeout",
              `Cannot reach the guest agent (QGA): it did not answer within ${
                AGENT_WAIT_MS / 1000
              } s of the guest running`,
            ),
        }),
  );
  // The clock first: the rotate command and everything after it see the host's time.
  if (resumed) {
    await timer.time(
      "clock",
      () => setGuestClock(qga, { timeoutMs: 10_000, signal: options.signal, method: how.clock }),
    );
  }
  const rotate = profile.rotate;
  if (options.noRotation || rotate === undefined) return {};
  const secrets = generateSecrets(profile.secrets);
  const values = { ...secrets, ...runtimeValues(options.name, profile, ctx.ports) };
  const count = Object.keys(secrets).length;
  progress(`rotating ${count} secret${count === 1 ? "" : "s"}`);
  const result = await timer.time("rotate", () =>
    qga.exec(rotate.command, {
      input: new TextEncoder().encode(keyValueLines(values)),
      timeoutMs: rotate.timeout_s * 1000,
      signal: options.signal,
    }));
  if (result.exitCode !== 0) {
    const stderr = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3).join(
      " / ",
    );
    throw new EmuError(
      "rotation_failed",
      `Cannot rotate secrets: ${rotate.command} exited ${
        result.exitCode ?? `on signal ${result.signal}`
      }${stderr ? `: ${stderr}` : ""}`,
      {
        hint: "Fix the image's rotate command (it reads KEY=VALUE lines on stdin and must exit 0).",
      },
    );
  }
  return secrets;
}

/**
 * A connection to the guest agent held open while the VM's state is saved, or `null` if
 * the agent does not answer within `timeoutMs`. qemu-ga, while nobody is connected on
 * the host side, re-checks its port every 100 ms (it sleeps in between): a state saved
 * in that loop answers a resume's first command up to 100 ms late. Saved with a
 * connection open, the agent is waiting on its port and answers at once.
 */
export async function attachAgent(
  socket: string,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<QgaClient | null> {
  try {
    return await QgaClient.connect(socket, options);
  } catch (err) {
    if (err instanceof EmuError && err.code === "aborted") throw err;
    return null;
  }
}

/** Waits for every health check (timed as `health`). */
export function waitHealthyTimed(
  ctx: BootContext,
  timer: PhaseTimer,
  timeoutMs = ctx.options.healthTimeoutMs ?? 300_000,
): Promise<HealthResult[]> {
  return timer.time("health", () =>
    waitHealthy(ctx.profile.health, ctx.ports, {
      timeoutMs,
      signal: ctx.options.signal,
      onWaiting: ctx.progress,
    }));
}

/**
 * Waits for every health check — or for `health`, a wait already under way — then
 * records the instance as running.
 */
export async function becomeHealthy(
  ctx: BootContext,
  record: InstanceRecord,
  timer: PhaseTimer,
  secrets: Record<string, string>,
  timeoutMs = ctx.options.healthTimeoutMs ?? 300_000,
  health: Promise<HealthResult[]> = waitHealthyTimed(ctx, timer, timeoutMs),
): Promise<StartResult> {
  const results = await health;
  record.state = "running";
  record.healthy_at = new Date().toISOString();
  await timer.time("record", () => writeRecord(ctx.paths.record, record));
  const timings = timer.timings();
  return {
    record,
    alreadyRunning: false,
    health: results,
    bootMs: timings.total,
    timings,
    secrets,
    fallback: null,
  };
}
