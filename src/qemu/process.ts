/**
 * Starting QEMU as a daemon and checking on it. QEMU's own `-daemonize` is used: its
 * parent process waits until the VM is set up (devices created, sockets listening) and
 * only then exits, so a configuration error comes back with QEMU's own message.
 *
 * @module
 */
import process from "node:process";
import { EmuError } from "../errors.ts";

/** Options of {@linkcode launchQemu}. */
export interface LaunchOptions {
  /** The pid file named in argv (`-pidfile`). */
  pidFile: string;
  /** Give up if QEMU has not daemonized by then (default 30 s). */
  timeoutMs?: number;
}

/**
 * Runs `binary argv…` (argv must contain `-daemonize -pidfile <pidFile>`) and returns the
 * daemon's pid once QEMU reports it is up.
 *
 * @throws {EmuError} `qemu_failed` with the last lines QEMU printed.
 */
export async function launchQemu(
  binary: string,
  argv: readonly string[],
  options: LaunchOptions,
): Promise<number> {
  if (!argv.includes("-daemonize")) {
    throw new EmuError("internal", "Cannot launch QEMU: argv lacks -daemonize");
  }
  const child = new Deno.Command(binary, {
    args: [...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (timedOut) {
    throw new EmuError(
      "qemu_failed",
      `Cannot start QEMU: it did not finish starting within ${(timeoutMs / 1000).toFixed(0)} s`,
    );
  }
  if (!out.success) {
    const lines = stderr.split("\n").filter((l) => l.trim() !== "").slice(-3).join(" / ");
    throw new EmuError(
      "qemu_failed",
      `Cannot start QEMU: ${lines || `it exited with code ${out.code}`}`,
      {
        hint: "Run `emu doctor` to check QEMU and the accelerator.",
      },
    );
  }
  const pid = await readPidFile(options.pidFile);
  if (pid === null) {
    throw new EmuError(
      "qemu_failed",
      `Cannot start QEMU: it reported success but wrote no pid to ${options.pidFile}`,
    );
  }
  return pid;
}

/** The pid in a QEMU pid file, or `null` if the file is missing or empty. */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Whether a live process with `pid` exists (it may belong to another user). A zombie —
 * exited, not yet reaped by its new parent — counts as gone.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
  if (Deno.build.os !== "linux") return true;
  try {
    // A zombie is gone, unless other threads are still exiting: they may hold its files
    // and sockets (QEMU killed while its migration threads write), so it counts as alive
    // until "Threads:" is down to the leader.
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    if (!/^State:\s+Z/m.test(status)) return true;
    return Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? "1") > 1;
  } catch {
    return false;
  }
}

/** Waits up to `ms` for `pid` to exit; true if it did. */
export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processExists(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** Kills `pid` with SIGKILL if it is alive, and waits (up to 10 s) until it is gone. */
export async function killAndWait(pid: number): Promise<void> {
  if (!processExists(pid)) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* exited meanwhile */ }
  await waitForExit(pid, 10_000);
}
