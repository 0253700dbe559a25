/** Runs the CLI in-process with captured output, or as a real subprocess. */
import type { CliIo } from "../../src/cli/io.ts";
import { runCli } from "../../src/cli/run.ts";

/** What one CLI run produced. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for a test run of the CLI. */
export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  terminal?: boolean;
}

/** Runs `emu args…` in this process with a clean environment (HOME under a temp dir). */
export async function runEmu(args: string[], options: RunOptions = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (t) => stdout += t,
    stderr: (t) => stderr += t,
    stdoutBytes: (b) => stdout += new TextDecoder().decode(b),
    stderrBytes: (b) => stderr += new TextDecoder().decode(b),
    env: { HOME: "/nonexistent-home", ...options.env },
    cwd: options.cwd ?? "/",
    stderrIsTerminal: options.terminal ?? false,
    uid: 1000,
    tmpDir: "/tmp",
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** Path of `main.ts`. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** The arguments of `deno` that run `emu args…` from this tree (after `Deno.execPath()`). */
export function emuArgs(args: string[]): string[] {
  return ["run", "--allow-all", "--config", CONFIG, MAIN, ...args];
}

/** Runs `deno run -A main.ts args…` as a real process. */
export async function spawnEmu(args: string[], options: RunOptions = {}): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: emuArgs(args),
    cwd: options.cwd ?? Deno.cwd(),
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}
