/**
 * Instances on disk and as processes: is the recorded QEMU still ours and alive, which
 * instances exist, and clearing what a dead one left behind.
 *
 * @module
 */
import { join } from "node:path";
import { type InstancePaths, instancePaths } from "../config/paths.ts";
import { ensureRuntimeDir } from "../config/private_dir.ts";
import type { Settings } from "../config/settings.ts";
import { runProgram } from "../process.ts";
import { processExists } from "../qemu/process.ts";
import { InstanceLock } from "./lock.ts";
import { type InstanceRecord, readRecord } from "./record.ts";
import { exists } from "../exists.ts";

/**
 * Whether `pid` is the QEMU of instance `name`: alive, and its command line serves the
 * instance's QMP socket (exactly that path). A pid reused by another program after a
 * crash is not ours, nor a QEMU of another emu home.
 */
export async function isOurQemu(pid: number, qmpSocket: string): Promise<boolean> {
  if (!processExists(pid)) return false;
  const cmdline = await processCommandLine(pid);
  return cmdline === null ? true : cmdline.includes(`path=${qmpSocket},`);
}

async function processCommandLine(pid: number): Promise<string | null> {
  if (Deno.build.os === "linux") {
    const raw = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => null);
    return raw === null ? null : raw.replaceAll("\0", " ");
  }
  const r = await runProgram("ps", ["-o", "command=", "-p", String(pid)]);
  return r.ok ? r.stdout : null;
}

/** An instance as found on disk. */
export interface FoundInstance {
  name: string;
  paths: InstancePaths;
  record: InstanceRecord | null;
  /** The recorded QEMU is alive and ours. */
  alive: boolean;
}

/**
 * Looks up instance `name`. The socket directory is checked first (private, the user's),
 * so that no socket is ever used from a directory another user could reach.
 */
export async function findInstance(settings: Settings, name: string): Promise<FoundInstance> {
  const paths = instancePaths(settings.home, settings.runtimeDir, name);
  ensureRuntimeDir(settings.runtimeDir);
  const record = await readRecord(paths.record);
  const alive = record?.pid ? await isOurQemu(record.pid, record.sockets.qmp) : false;
  return { name, paths, record, alive };
}

/** An instance looked up again under its lock; disposing it releases the lock. */
export interface LockedInstance extends Disposable {
  found: FoundInstance;
}

/**
 * Takes instance `name`'s lock, then looks the instance up again under it (another emu
 * may have started or stopped it meanwhile). With `create` the instance directory is
 * made first; without it, an instance that has no directory (nothing to protect) is
 * returned without a lock.
 *
 * @throws {EmuError} `instance_busy` when another emu holds the lock past `waitMs`.
 */
export async function lockInstance(
  settings: Settings,
  name: string,
  options: { create?: boolean; waitMs?: number; signal?: AbortSignal } = {},
): Promise<LockedInstance> {
  const { paths } = await findInstance(settings, name);
  if (options.create) await Deno.mkdir(paths.dir, { recursive: true });
  const lock = await exists(paths.dir)
    ? await InstanceLock.acquire(paths.lock, `instance ${name}`, {
      waitMs: options.waitMs ?? 30_000,
      signal: options.signal,
    })
    : null;
  try {
    return { found: await findInstance(settings, name), [Symbol.dispose]: () => lock?.release() };
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/** Every instance directory under the home, sorted by name. */
export async function listInstances(settings: Settings): Promise<FoundInstance[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(settings.layout.instances)) {
      if (e.isDirectory) names.push(e.name);
    }
  } catch { /* none yet */ }
  return Promise.all(names.sort().map((n) => findInstance(settings, n)));
}

/** Removes the sockets and pid file a dead QEMU left; keeps disk, log and record. */
export async function clearRuntimeFiles(paths: InstancePaths): Promise<void> {
  for (const p of [paths.qmpSocket, paths.qgaSocket, paths.pidFile]) {
    await Deno.remove(p).catch(() => {});
  }
}

/** The instance directory of `name` under the home. */
export function instanceDir(settings: Settings, name: string): string {
  return join(settings.layout.instances, name);
}
