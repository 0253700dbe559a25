/**
 * A persistent JSON command channel over one connection, shared by the QMP and QGA
 * clients: unique ids, a pending map that matches replies by id, events as a stream,
 * and no call that waits forever.
 *
 * - Every call has a timeout and takes an `AbortSignal`.
 * - When the connection closes (either side), every pending call is rejected with
 *   `protocol_closed` and every event stream ends.
 * - A reply to an unknown id is logged and dropped; so is a message without an id that
 *   nobody waits for.
 *
 * @module
 */
import { withDeadline } from "../async.ts";
import { CommandError, EmuError } from "../errors.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, MessageDecoder } from "./_framing.ts";

/** An asynchronous event (QMP `{"event": …}`). */
export interface ProtocolEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** Options of a {@linkcode JsonChannel}. */
export interface JsonChannelOptions {
  /** Names the peer in messages: `QMP` or `QGA`. */
  peer: "QMP" | "QGA";
  maxMessageBytes?: number;
  /**
   * A line that is not a JSON object: `fail` closes the channel (QMP: the stream can no
   * longer be trusted), `skip` logs and goes on (QGA: sync recovers).
   */
  invalidLines: "fail" | "skip";
  /** Default call timeout (default 30 s). */
  timeoutMs?: number;
  /** Diagnostics (dropped replies, skipped bytes). */
  log?: (text: string) => void;
  /**
   * The id of the first call (default 1). The guest agent's port outlives a connection:
   * a reply to a client that went away (an emu killed mid-call) is handed to the next
   * client, so a QGA channel starts at a random id and such a reply matches no call.
   */
  firstId?: number;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the channel's default timeout. */
  timeoutMs?: number;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

const MAX_UNSOLICITED = 64;

/** What messages call each peer: the user may not know the protocols' names. */
const PEER_NAMES = { QMP: "QEMU (QMP)", QGA: "the guest agent (QGA)" } as const;

/** One JSON command channel. */
export class JsonChannel {
  readonly #conn: Deno.Conn;
  readonly #options: JsonChannelOptions;
  readonly #decoder: MessageDecoder;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(event: ProtocolEvent | null) => void>();
  readonly #unsolicited: Record<string, unknown>[] = [];
  readonly #unsolicitedWaiters: ((message: Record<string, unknown> | null) => void)[] = [];
  readonly #readLoop: Promise<void>;
  #nextId = 1;
  #failure: EmuError | null = null;
  #writeChain: Promise<void> = Promise.resolve();

  /** The peer as a user reads it in messages. */
  get #peerName(): string {
    return PEER_NAMES[this.#options.peer];
  }

  constructor(conn: Deno.Conn, options: JsonChannelOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#decoder = new MessageDecoder(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
    this.#nextId = options.firstId ?? 1;
    this.#readLoop = this.#read();
  }

  /** Why the channel is closed, or `null` while it is open. */
  get failure(): EmuError | null {
    return this.#failure;
  }

  /**
   * Sends `{"execute": command, "arguments": args, "id": n}` and resolves with the
   * reply's `return` value.
   *
   * @throws {CommandError} when the peer answers with an error.
   * @throws {EmuError} `protocol_timeout`, `aborted` or `protocol_closed`.
   */
  call(
    command: string,
    args?: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 30_000;
    return withDeadline<unknown>((resolve, reject) => {
      this.#pending.set(id, { command, resolve, reject });
      const message = args === undefined
        ? { execute: command, id }
        : { execute: command, arguments: args, id };
      this.write(new TextEncoder().encode(`${JSON.stringify(message)}\n`)).catch(reject);
      return () => this.#pending.delete(id);
    }, {
      timeoutMs,
      signal: options.signal,
      action: `run ${command}`,
      onTimeout: () =>
        new EmuError(
          "protocol_timeout",
          `Cannot run ${command}: ${this.#peerName} did not answer within ${formatMs(timeoutMs)}`,
        ),
    });
  }

  /** Writes raw bytes, after any write already queued (writes never interleave). */
  write(bytes: Uint8Array): Promise<void> {
    const next = this.#writeChain.then(async () => {
      if (this.#failure) throw this.#failure;
      let written = 0;
      try {
        while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
      } catch (err) {
        throw this.#fail(
          new EmuError(
            "protocol_closed",
            `Cannot write to ${this.#peerName}: ${(err as Error).message}`,
            { cause: err },
          ),
        );
      }
    });
    this.#writeChain = next.catch(() => {});
    return next;
  }

  /**
   * The next message that is neither a reply with an id nor an event (the QMP greeting),
   * including ones that arrived before this call.
   */
  nextUnsolicited(options: CallOptions & { what: string }): Promise<Record<string, unknown>> {
    const buffered = this.#unsolicited.shift();
    if (buffered !== undefined) return Promise.resolve(buffered);
    if (this.#failure) return Promise.reject(this.#failure);
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 30_000;
    return withDeadline<Record<string, unknown>>((resolve, reject) => {
      const waiter = (message: Record<string, unknown> | null) =>
        message === null ? reject(this.#failure) : resolve(message);
      this.#unsolicitedWaiters.push(waiter);
      return () => {
        const i = this.#unsolicitedWaiters.indexOf(waiter);
        if (i >= 0) this.#unsolicitedWaiters.splice(i, 1);
      };
    }, {
      timeoutMs,
      signal: options.signal,
      action: `read ${options.what}`,
      onTimeout: () =>
        new EmuError(
          "protocol_timeout",
          `Cannot read ${options.what}: ${this.#peerName} sent nothing within ${
            formatMs(timeoutMs)
          }`,
        ),
    });
  }

  /**
   * Resolves with the first event named `name` that satisfies `predicate`. Listening
   * starts at the call, so call it before the command that causes the event.
   */
  waitForEvent(
    name: string,
    predicate: (event: ProtocolEvent) => boolean = () => true,
    options: CallOptions = {},
  ): Promise<ProtocolEvent> {
    if (this.#failure) return Promise.reject(this.#failure);
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 30_000;
    return withDeadline<ProtocolEvent>((resolve, reject) => {
      const listener = (event: ProtocolEvent | null) => {
        if (event === null) reject(this.#failure);
        else if (event.event === name && predicate(event)) resolve(event);
      };
      this.#listeners.add(listener);
      return () => this.#listeners.delete(listener);
    }, {
      timeoutMs,
      signal: options.signal,
      action: `wait for ${name}`,
      onTimeout: () =>
        new EmuError(
          "protocol_timeout",
          `Cannot see event ${name}: it did not come within ${formatMs(timeoutMs)}`,
        ),
    });
  }

  /** Closes the connection; rejects pending calls. Safe to call more than once. */
  async close(): Promise<void> {
    this.#fail(
      new EmuError(
        "protocol_closed",
        `Cannot use the connection to ${this.#peerName}: it was closed`,
      ),
    );
    await this.#readLoop;
  }

  async #read(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (this.#failure === null) {
        const n = await this.#conn.read(buffer);
        if (n === null) {
          this.#fail(
            new EmuError(
              "protocol_closed",
              `Cannot use the connection to ${this.#peerName}: the peer closed it`,
            ),
          );
          break;
        }
        // The decoder keeps views of partial lines, so it gets a copy of the read buffer.
        for (const item of this.#decoder.push(buffer.slice(0, n))) {
          if (item.kind === "message") this.#dispatch(item.value);
          else if (item.kind === "skipped") {
            this.#log(`skipped ${item.bytes} bytes before a message`);
          } else if (item.kind === "oversized") {
            this.#fail(
              new EmuError(
                "protocol",
                `Cannot read from ${this.#peerName}: a message exceeded ${this.#decoder.maxBytes} bytes`,
              ),
            );
          } else if (this.#options.invalidLines === "fail") {
            this.#fail(
              new EmuError(
                "protocol",
                `Cannot read from ${this.#peerName}: it sent a line that is not JSON (${item.reason}): ${item.text}`,
              ),
            );
          } else {
            this.#log(`skipped a line that is not JSON: ${item.text}`);
          }
        }
      }
    } catch (err) {
      this.#fail(
        new EmuError(
          "protocol_closed",
          `Cannot use the connection to ${this.#peerName}: ${(err as Error).message}`,
          { cause: err },
        ),
      );
    }
  }

  #dispatch(message: Record<string, unknown>): void {
    if (typeof message.event === "string") {
      const event: ProtocolEvent = {
        event: message.event,
        data: (message.data as Record<string, unknown> | undefined) ?? {},
        ...(message.timestamp
          ? { timestamp: message.timestamp as ProtocolEvent["timestamp"] }
          : {}),
      };
      for (const listener of [...this.#listeners]) listener(event);
      return;
    }
    if (message.id !== undefined) {
      const pending = typeof message.id === "number" ? this.#pending.get(message.id) : undefined;
      if (pending === undefined) {
        this.#log(`dropped a reply to unknown id ${JSON.stringify(message.id)}`);
        return;
      }
      const error = message.error as { class?: string; desc?: string } | undefined;
      if (error !== undefined) {
        const code = this.#options.peer === "QMP" ? "qmp_command_failed" : "qga_command_failed";
        pending.reject(
          new CommandError(code, pending.command, error.class ?? "UnknownError", error.desc ?? ""),
        );
      } else {
        pending.resolve(message.return);
      }
      return;
    }
    const waiter = this.#unsolicitedWaiters.shift();
    if (waiter !== undefined) return waiter(message);
    this.#unsolicited.push(message);
    if (this.#unsolicited.length > MAX_UNSOLICITED) {
      this.#log(
        `dropped an unexpected message: ${JSON.stringify(this.#unsolicited.shift()).slice(0, 200)}`,
      );
    }
  }

  /** Records the first failure, closes the connection, and rejects everyone waiting. */
  #fail(error: EmuError): EmuError {
    if (this.#failure !== null) return this.#failure;
    this.#failure = error;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    for (const listener of [...this.#listeners]) listener(null);
    for (const waiter of this.#unsolicitedWaiters.splice(0)) waiter(null);
    return error;
  }

  #log(text: string): void {
    this.#options.log?.(`${this.#options.peer}: ${text}`);
  }
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}
