/**
 * QMP client: the QEMU Machine Protocol over a unix socket. Reads the greeting,
 * negotiates capabilities, and offers typed helpers for what capture and resume need
 * (docs/architecture.md, «Capture», «Start: resume and rotation»).
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { type CallOptions, JsonChannel, type ProtocolEvent } from "./json_channel.ts";
import { connectUnix } from "./unix_socket.ts";

/** QEMU's version from the greeting. */
export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
  package: string;
}

/** Options of {@linkcode QmpClient.connect}. */
export interface QmpConnectOptions {
  /** Deadline for the socket to accept, the greeting, and negotiation (default 10 s). */
  timeoutMs?: number;
  /** Default timeout of each command (default 30 s). */
  commandTimeoutMs?: number;
  signal?: AbortSignal;
  log?: (text: string) => void;
}

/** `query-status`. */
export interface VmStatus {
  running: boolean;
  status: string;
}

/** `query-migrate` (the fields emu reads). */
export interface MigrationInfo {
  status?: string;
  "error-desc"?: string;
  "total-time"?: number;
  ram?: { transferred?: number; total?: number };
  [key: string]: unknown;
}

/** A connected, negotiated QMP session. */
export class QmpClient {
  readonly #channel: JsonChannel;
  /** QEMU's version as the greeting reported it. */
  readonly version: QemuVersion;
  /** Capabilities the greeting offered. */
  readonly capabilities: readonly string[];

  private constructor(channel: JsonChannel, version: QemuVersion, capabilities: string[]) {
    this.#channel = channel;
    this.version = version;
    this.capabilities = capabilities;
  }

  /**
   * Connects to QEMU's QMP socket at `path` (waiting for it to appear), reads the
   * greeting and leaves capabilities negotiation mode.
   */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const conn = await connectUnix(path, { timeoutMs, signal: options.signal });
    const channel = new JsonChannel(conn, {
      peer: "QMP",
      invalidLines: "fail",
      timeoutMs: options.commandTimeoutMs,
      log: options.log,
    });
    try {
      const remaining = () => Math.max(1, deadline - Date.now());
      const greeting = await channel.nextUnsolicited({
        what: "the QMP greeting",
        timeoutMs: remaining(),
        signal: options.signal,
      });
      const qmp = greeting.QMP as {
        version?: { qemu?: Record<string, number>; package?: string };
        capabilities?: string[];
      } | undefined;
      if (qmp?.version?.qemu === undefined) {
        throw new EmuError(
          "protocol",
          `Cannot use ${path}: the first message is not a QMP greeting: ${
            JSON.stringify(greeting).slice(0, 200)
          }`,
          {
            hint: "Check that the path is QEMU's -qmp socket.",
          },
        );
      }
      await channel.call("qmp_capabilities", undefined, {
        timeoutMs: remaining(),
        signal: options.signal,
      });
      const v = qmp.version.qemu;
      return new QmpClient(
        channel,
        {
          major: v.major ?? 0,
          minor: v.minor ?? 0,
          micro: v.micro ?? 0,
          package: (qmp.version.package ?? "").trim(),
        },
        qmp.capabilities ?? [],
      );
    } catch (err) {
      await channel.close();
      throw err;
    }
  }

  /** `major.minor.micro`. */
  get versionString(): string {
    return `${this.version.major}.${this.version.minor}.${this.version.micro}`;
  }

  /** Runs any QMP command; resolves with its `return` value. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<T> {
    return this.#channel.call(command, args, options) as Promise<T>;
  }

  /** First event `name` matching `predicate`; listening starts now. */
  waitForEvent(
    name: string,
    predicate?: (event: ProtocolEvent) => boolean,
    options?: CallOptions,
  ): Promise<ProtocolEvent> {
    return this.#channel.waitForEvent(name, predicate, options);
  }

  /** Pauses the guest's vCPUs. */
  stop(options?: CallOptions): Promise<void> {
    return this.execute<void>("stop", undefined, options).then(() => {});
  }

  /** Resumes the guest's vCPUs (needed after an incoming migration of a stopped source). */
  cont(options?: CallOptions): Promise<void> {
    return this.execute("cont", undefined, options).then(() => {});
  }

  /** Asks QEMU to exit at once. */
  quit(options?: CallOptions): Promise<void> {
    return this.execute("quit", undefined, options).then(() => {});
  }

  /** Presses the ACPI power button: a graceful guest shutdown. */
  systemPowerdown(options?: CallOptions): Promise<void> {
    return this.execute("system_powerdown", undefined, options).then(() => {});
  }

  /** Whether the vCPUs run and QEMU's run state (`running`, `paused`, `inmigrate`, …). */
  queryStatus(options?: CallOptions): Promise<VmStatus> {
    return this.execute<VmStatus>("query-status", undefined, options);
  }

  /** Sets migration capabilities, e.g. `{ "mapped-ram": true, multifd: true, events: true }`. */
  migrateSetCapabilities(
    capabilities: Record<string, boolean>,
    options?: CallOptions,
  ): Promise<void> {
    const list = Object.entries(capabilities).map(([capability, state]) => ({ capability, state }));
    return this.execute("migrate-set-capabilities", { capabilities: list }, options).then(() => {});
  }

  /** Sets migration parameters, e.g. `{ "multifd-channels": 2, "max-bandwidth": 0 }`. */
  migrateSetParameters(parameters: Record<string, unknown>, options?: CallOptions): Promise<void> {
    return this.execute("migrate-set-parameters", parameters, options).then(() => {});
  }

  /** Starts an outgoing migration to `uri` (e.g. `file:/abs/state`). */
  migrate(uri: string, options?: CallOptions): Promise<void> {
    return this.execute("migrate", { uri }, options).then(() => {});
  }

  /**
   * Starts an incoming migration from `uri` on a QEMU started with `-incoming defer`.
   * `exitOnError: false` keeps QEMU alive on a failed load so emu can report and fall back.
   */
  migrateIncoming(
    uri: string,
    { exitOnError = false, ...options }: CallOptions & { exitOnError?: boolean } = {},
  ): Promise<void> {
    return this.execute("migrate-incoming", { uri, "exit-on-error": exitOnError }, options).then(
      () => {},
    );
  }

  /** Migration progress and status. */
  queryMigrate(options?: CallOptions): Promise<MigrationInfo> {
    return this.execute<MigrationInfo>("query-migrate", undefined, options);
  }

  /** The VM generation ID (`vmgenid` device) as a GUID string. */
  queryVmGenerationId(options?: CallOptions): Promise<string> {
    return this.execute<{ guid: string }>("query-vm-generation-id", undefined, options).then((r) =>
      r.guid
    );
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
