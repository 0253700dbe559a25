/**
 * Running a short-lived program to completion: one shape for every tool emu asks
 * something (`qemu-img`, `qemu-system-* --version`, `ps`, `gh`, `tar`, `cloud-init`),
 * whether it is missing, fails or succeeds. Long-lived processes (QEMU itself, the child
 * of `emu run`) have their own owners.
 *
 * @module
 */

/** How a program ran. */
export interface RunResult {
  /** It started and exited 0. */
  ok: boolean;
  /** Its exit code, or `null` when it could not be started (not installed). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Why it could not be started, when it could not. */
  spawnError?: string;
}

/**
 * Runs `program args…` with no stdin and collects its output; never throws for a
 * missing program or a failure, which the caller turns into its own error.
 *
 * @example
 * ```ts
 * import { runProgram } from "./process.ts";
 * const r = await runProgram("sh", ["-c", "echo hi; exit 3"]);
 * if (r.ok || r.code !== 3 || r.stdout !== "hi\n") throw new Error(JSON.stringify(r));
 * const missing = await runProgram("emu-no-such-program", []);
 * if (missing.code !== null || missing.spawnError === undefined) throw new Error();
 * ```
 */
export async function runProgram(
  program: string,
  args: readonly string[],
  options: { signal?: AbortSignal; env?: Record<string, string> } = {},
): Promise<RunResult> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(program, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: options.signal,
      env: options.env,
    }).output();
  } catch (err) {
    return { ok: false, code: null, stdout: "", stderr: "", spawnError: (err as Error).message };
  }
  const decoder = new TextDecoder();
  return {
    ok: out.success,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}
