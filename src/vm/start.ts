/**
 * Starting an instance by cold boot: lock, reuse a healthy running instance, check ports
 * before QEMU starts, run overlay on the image, runtime ISO (EMUCFG), the SPEC §8
 * command line, then wait for the guest agent and every health check.
 *
 * @module
 */
import { join } from "node:path";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { EmuError } from "../errors.ts";
import { writeIsoFile } from "../iso/mod.ts";
import { QgaClient } from "../protocol/mod.ts";
import { buildArgv, type VmSpec } from "../qemu/argv.ts";
import { launchQemu } from "../qemu/process.ts";
import { probeHost } from "../qemu/probe.ts";
import { type HealthResult, runHealthChecks, waitHealthy } from "./health.ts";
import { resolveImage } from "./image_source.ts";
import { clearRuntimeFiles, findInstance } from "./instance.ts";
import { InstanceLock } from "./lock.ts";
import { assertPortsFree } from "./ports.ts";
import { type InstanceRecord, writeRecord } from "./record.ts";
import { serialTail } from "./serial.ts";
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
  using _lock = await InstanceLock.acquire(paths.lock, name, {
    waitMs: options.lockWaitMs ?? 30_000,
    signal: options.signal,
  });

  // Re-read under the lock: another emu may have started it meanwhile.
  const current = await findInstance(settings, name);
  if (current.alive && current.record) {
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
    return { record, alreadyRunning: true, health, bootMs: 0 };
  }
  if (current.record?.pid) {
    progress(`instance ${name}: its QEMU (pid ${current.record.pid}) is gone; cleaning up`);
  }
  await clearRuntimeFiles(paths);

  const ports = resolvePorts(profile, options.portOverrides);
  await assertPortsFree(ports, settings.layout.instances);
  const image = await resolveImage(profile);
  const { result: probe } = await probeHost({
    cachePath: settings.layout.probe,
    env: options.env,
    guestArch: image.arch,
  });

  if (!(await Deno.stat(paths.runDisk).then(() => true, () => false))) {
    await createOverlay(probe.qemu.img, image.disk, paths.runDisk);
  }
  await writeIsoFile(
    [{ path: "runtime.env", data: new TextEncoder().encode(runtimeEnv(name, profile, ports)) }],
    paths.runtimeIso,
    { label: "EMUCFG" },
  );

  const spec: VmSpec = {
    arch: image.arch,
    machine: probe.machine,
    accel: probe.accel.accel,
    cpu: probe.cpu.model,
    memoryMib: profile.vm.memory_mib,
    cpus: profile.vm.cpus,
    disk: paths.runDisk,
    runtimeIso: paths.runtimeIso,
    forwards: Object.entries(ports).map(([n, p]) => ({ name: n, host: p.host, guest: p.guest })),
    qmpSocket: paths.qmpSocket,
    qgaSocket: paths.qgaSocket,
    serialLog: paths.serialLog,
    name,
    pidFile: paths.pidFile,
    ...(image.boot
      ? {
        kernel: { path: image.boot.kernel, initrd: image.boot.initrd, append: image.boot.append },
      }
      : {}),
    ...(probe.firmware ? { firmware: probe.firmware.path } : {}),
  };
  await Deno.writeTextFile(paths.serialLog, "");
  progress(
    `cold-booting ${image.name} ${image.version} (${probe.accel.accel}, ${profile.vm.memory_mib} MiB, ${profile.vm.cpus} vCPU)`,
  );
  const started = performance.now();
  const pid = await launchQemu(probe.qemu.path, buildArgv(spec), { pidFile: paths.pidFile });
  const record: InstanceRecord = {
    schema: 1,
    name,
    state: "starting",
    pid,
    qemu: probe.qemu.path,
    ports,
    sockets: { qmp: paths.qmpSocket, qga: paths.qgaSocket },
    image: { dir: image.dir, name: image.name, version: image.version, sha256: image.sha256 },
    snapshot: null,
    boot: "cold",
    profile: options.profilePath,
    started_at: new Date().toISOString(),
    healthy_at: null,
    stopped_at: null,
    stop_method: null,
  };
  await writeRecord(paths.record, record);

  const timeoutMs = options.healthTimeoutMs ?? 300_000;
  try {
    progress("waiting for the guest agent");
    const qga = await QgaClient.connect(paths.qgaSocket, { timeoutMs, signal: options.signal });
    await qga.close();
    const health = await waitHealthy(profile.health, ports, {
      timeoutMs: Math.max(1000, timeoutMs - (performance.now() - started)),
      signal: options.signal,
      onWaiting: progress,
    });
    record.state = "running";
    record.healthy_at = new Date().toISOString();
    await writeRecord(paths.record, record);
    return {
      record,
      alreadyRunning: false,
      health,
      bootMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    record.state = "unhealthy";
    await writeRecord(paths.record, record);
    const tail = await serialTail(paths.serialLog, 15);
    if (options.stopOnFailure) await stopInstance({ settings, name, lockHeld: true });
    if (
      err instanceof EmuError &&
      (err.code === "health_timeout" || err.code === "protocol_timeout" ||
        err.code === "socket_unavailable")
    ) {
      const left = options.stopOnFailure
        ? "The VM was stopped."
        : `The VM is left running: \`emu logs --name ${name}\`, then \`emu stop --name ${name}\`.`;
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

async function createOverlay(
  qemuImg: string | null,
  backing: string,
  overlay: string,
): Promise<void> {
  if (qemuImg === null) {
    throw new EmuError("qemu_missing", "Cannot create the run disk: qemu-img is not installed", {
      hint: "Install qemu-utils (Debian) or qemu (Homebrew).",
    });
  }
  const temp = join(overlay + `.tmp-${crypto.randomUUID()}`);
  // The backing path is absolute: QEMU resolves it after changing directory.
  const out = await new Deno.Command(qemuImg, {
    args: ["create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2", temp],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(temp).catch(() => {});
    throw new EmuError(
      "qemu_failed",
      `Cannot create the run disk: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  await Deno.rename(temp, overlay);
}
