/**
 * What the CLI needs from the process, gathered in one value so commands can be run
 * in-process by tests with captured output and a chosen environment.
 *
 * @module
 */
import { tmpdir } from "node:os";

/** The process as the CLI sees it. */
export interface CliIo {
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Writes bytes to standard output (guest command output passed through as is). */
  stdoutBytes(bytes: Uint8Array): void;
  /** Writes bytes to standard error. */
  stderrBytes(bytes: Uint8Array): void;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Whether standard error is a terminal (colour, progress redraws). */
  stderrIsTerminal: boolean;
  uid: number | null;
  tmpDir: string;
}

/** The real process. */
export function processIo(): CliIo {
  const encoder = new TextEncoder();
  return {
    stdout: (text) => writeAll(Deno.stdout, encoder.encode(text)),
    stderr: (text) => writeAll(Deno.stderr, encoder.encode(text)),
    stdoutBytes: (bytes) => writeAll(Deno.stdout, bytes),
    stderrBytes: (bytes) => writeAll(Deno.stderr, bytes),
    env: Deno.env.toObject(),
    cwd: Deno.cwd(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    uid: Deno.uid(),
    tmpDir: tmpdir(),
  };
}

function writeAll(stream: typeof Deno.stdout, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}
