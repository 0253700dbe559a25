/**
 * The instance lock (and the snapshot lock): an advisory `flock` on a lock file such as
 * `instances/<name>/lock`. The kernel drops it
 * when its holder exits, however it exits, so a lock left by a killed emu is simply
 * taken over. The holder's pid is written in the file for the "busy" message.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { retryWithBackoff } from "../async.ts";

/** A held instance lock. */
export class InstanceLock implements Disposable {
  readonly #file: Deno.FsFile;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Takes the lock at `path`, waiting up to `waitMs` (default 0: fail at once) while
   * another emu holds it.
   *
   * @throws {EmuError} `instance_busy` naming the holder.
   */
  static async acquire(
    path: string,
    what: string,
    options: { waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<InstanceLock> {
    const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    const busy = new Error("busy");
    try {
      await retryWithBackoff(async () => (await file.tryLock(true)) || undefined, () => busy, {
        delayMs: 20,
        maxDelayMs: 200,
        timeoutMs: options.waitMs ?? 0,
        signal: options.signal,
      });
    } catch (err) {
      const holder = err === busy ? (await Deno.readTextFile(path).catch(() => "")).trim() : "";
      file.close();
      if (err !== busy) throw err;
      throw new EmuError(
        "instance_busy",
        `Cannot lock ${what}: another emu${holder ? ` (pid ${holder})` : ""} is working on it`,
        {
          hint:
            "Wait for it to finish, or stop it; a lock left by a killed emu is released by the OS automatically.",
        },
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return new InstanceLock(file);
  }

  /** Releases the lock. */
  release(): void {
    try {
      this.#file.close();
    } catch { /* already released */ }
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
