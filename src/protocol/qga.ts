/**
 * Guest agent (qemu-ga) client over the virtio-serial port's host socket.
 *
 * The agent's stream has no greeting and may hold a half-written request or stale
 * replies (a previous emu died mid-call, a call timed out). `guest-sync-delimited`
 * fixes that: a 0xFF byte makes the agent drop any partial input, and its reply (also
 * led by 0xFF) marks where fresh replies begin. The client syncs on connect and again
 * after any timeout.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EmuError } from "../errors.ts";
import { type CallOptions, JsonChannel } from "./json_channel.ts";
import { retryWithBackoff } from "../async.ts";
import { connectUnix } from "./unix_socket.ts";

/** Options of {@linkcode QgaClient.connect}. */
export interface QgaConnectOptions {
  /** Deadline for the socket and the first sync (default 10 s). */
  timeoutMs?: number;
  /** Default timeout of each command (default 30 s). */
  commandTimeoutMs?: number;
  signal?: AbortSignal;
  log?: (text: string) => void;
}

/** Options of {@linkcode QgaClient.exec}. */
export interface ExecOptions extends CallOptions {
  /** Arguments after the program path. */
  args?: string[];
  /** Environment, as `KEY=VALUE` strings (replaces the agent's). */
  env?: string[];
  /** Bytes fed to the program's stdin. */
  input?: Uint8Array;
  /** Capture stdout and stderr (default true). */
  captureOutput?: boolean;
}

/** How a guest program ended. */
export interface ExecResult {
  /** Exit code, or `null` if a signal ended it. */
  exitCode: number | null;
  /** The signal that ended it, if any. */
  signal: number | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** The agent caps captured output (16 MiB); these say whether it cut some. */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** A guest command started by {@linkcode QgaClient.execStart}. */
export interface RunningExec {
  pid: number;
  /** Polls until it exits. */
  wait(): Promise<ExecResult>;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
}

const SYNC_BYTE = new Uint8Array([0xff]);

/** A connected, synchronised guest agent session. */
export class QgaClient {
  readonly #channel: JsonChannel;
  #needsSync = true;

  private constructor(channel: JsonChannel) {
    this.#channel = channel;
  }

  /** Connects to the agent socket at `path` (waiting for it) and synchronises. */
  static async connect(path: string, options: QgaConnectOptions = {}): Promise<QgaClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const conn = await connectUnix(path, { timeoutMs, signal: options.signal });
    const channel = new JsonChannel(conn, {
      peer: "QGA",
      invalidLines: "skip",
      timeoutMs: options.commandTimeoutMs,
      log: options.log,
      // Far from any id an earlier client of this port used (see firstId).
      firstId: 1 + crypto.getRandomValues(new Uint32Array(1))[0] % 2 ** 30,
    });
    const client = new QgaClient(channel);
    try {
      await client.sync({ timeoutMs: Math.max(1, deadline - Date.now()), signal: options.signal });
      return client;
    } catch (err) {
      await channel.close();
      throw err;
    }
  }

  /**
   * Resynchronises: 0xFF, then `guest-sync-delimited` with a random id; the matching
   * reply proves every later reply is fresh.
   */
  async sync(options: CallOptions = {}): Promise<void> {
    const token = crypto.getRandomValues(new Uint32Array(1))[0] & 0x7fffffff;
    await this.#channel.write(SYNC_BYTE);
    const echoed = await this.#channel.call("guest-sync-delimited", { id: token }, options);
    if (echoed !== token) {
      throw new EmuError(
        "protocol",
        `Cannot sync with the guest agent: it echoed ${JSON.stringify(echoed)}, expected ${token}`,
      );
    }
    this.#needsSync = false;
  }

  /** Runs any agent command; syncs first if an earlier call timed out. */
  async execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<T> {
    if (this.#needsSync) await this.sync(options);
    try {
      return await this.#channel.call(command, args, options) as T;
    } catch (err) {
      // A late reply may still arrive; the next call must not mistake it for its own.
      if (err instanceof EmuError && (err.code === "protocol_timeout" || err.code === "aborted")) {
        this.#needsSync = true;
      }
      throw err;
    }
  }

  /** `guest-ping`: resolves when the agent answers. */
  ping(options?: CallOptions): Promise<void> {
    return this.execute("guest-ping", undefined, options).then(() => {});
  }

  /**
   * Runs `path` in the guest, feeding `input` on stdin, and waits for it to exit,
   * polling `guest-exec-status` with backoff (5 ms doubling to 25 ms: a rotate command
   * that ends between two polls keeps the start waiting until the next).
   */
  async exec(path: string, options: ExecOptions = {}): Promise<ExecResult> {
    return await (await this.execStart(path, options)).wait();
  }

  /**
   * Starts `path` in the guest and returns at once, so other agent commands can run
   * while it does; `wait()` then polls it to completion (the timeout counts from the
   * start). With `input`, it returns only once the agent has handed the input over: the
   * agent writes it from its main loop, which a blocking command sent next (such as
   * `guest-set-time`, which waits on `hwclock`) would otherwise hold up.
   */
  async execStart(path: string, options: ExecOptions = {}): Promise<RunningExec> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const call: CallOptions = { signal: options.signal, timeoutMs: Math.min(timeoutMs, 30_000) };
    const args: Record<string, unknown> = { path, "capture-output": options.captureOutput ?? true };
    if (options.args) args.arg = options.args;
    if (options.env) args.env = options.env;
    if (options.input) args["input-data"] = Buffer.from(options.input).toString("base64");
    const { pid } = await this.execute<{ pid: number }>("guest-exec", args, call);
    // One round trip: the main loop has run the input writer by the time it answers.
    if (options.input) await this.ping(call);
    const wait = (): Promise<ExecResult> =>
      retryWithBackoff(
        async () => {
          const status = await this.execute<ExecStatus>("guest-exec-status", { pid }, call);
          if (!status.exited) return undefined;
          return {
            exitCode: status.exitcode ?? null,
            signal: status.signal ?? null,
            stdout: decodeBase64(status["out-data"]),
            stderr: decodeBase64(status["err-data"]),
            stdoutTruncated: status["out-truncated"] === true,
            stderrTruncated: status["err-truncated"] === true,
          };
        },
        () =>
          new EmuError(
            "protocol_timeout",
            `Cannot finish ${path} in the guest: it was still running after ${
              (timeoutMs / 1000).toFixed(1)
            } s`,
          ),
        // The timeout counts from the start, not from the first poll.
        { delayMs: 5, maxDelayMs: 25, timeoutMs: deadline - Date.now(), signal: options.signal },
      );
    return { pid, wait };
  }

  /**
   * Sets the guest clock to `nanoseconds` since the epoch (default: the host's time now),
   * and the hardware clock from it.
   */
  setTime(
    nanoseconds: bigint = BigInt(Date.now()) * 1_000_000n,
    options?: CallOptions,
  ): Promise<void> {
    // JSON numbers cannot carry a bigint; nanoseconds since 1970 fit a double's integer range until 2255.
    return this.execute("guest-set-time", { time: Number(nanoseconds) }, options).then(() => {});
  }

  /** Opens a guest file; `mode` as fopen (`r`, `w`, `a`, …). Returns a handle. */
  fileOpen(path: string, mode = "r", options?: CallOptions): Promise<number> {
    return this.execute<number>("guest-file-open", { path, mode }, options);
  }

  /** Writes `bytes` to an open guest file; returns the count written. */
  async fileWrite(handle: number, bytes: Uint8Array, options?: CallOptions): Promise<number> {
    const r = await this.execute<{ count: number }>("guest-file-write", {
      handle,
      "buf-b64": Buffer.from(bytes).toString("base64"),
    }, options);
    return r.count;
  }

  /** Reads up to `count` bytes from an open guest file. */
  async fileRead(
    handle: number,
    count = 64 * 1024,
    options?: CallOptions,
  ): Promise<{ data: Uint8Array; eof: boolean }> {
    const r = await this.execute<{ "buf-b64": string; eof: boolean }>("guest-file-read", {
      handle,
      count,
    }, options);
    return { data: decodeBase64(r["buf-b64"]), eof: r.eof };
  }

  /** Closes a guest file handle. */
  fileClose(handle: number, options?: CallOptions): Promise<void> {
    return this.execute("guest-file-close", { handle }, options).then(() => {});
  }

  /** Why the connection is closed, or `null` while open. */
  get failure(): EmuError | null {
    return this.#channel.failure;
  }

  /** Closes the connection (idempotent); pending calls are rejected. */
  close(): Promise<void> {
    return this.#channel.close();
  }

  /** Closes the connection when an `await using` block ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function decodeBase64(text: string | undefined): Uint8Array {
  return text === undefined ? new Uint8Array(0) : new Uint8Array(Buffer.from(text, "base64"));
}
