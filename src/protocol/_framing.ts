/**
 * Splits the byte stream of a QMP or QGA connection into JSON messages.
 *
 * Both protocols send one JSON object per line: QMP ends lines with CRLF, qemu-ga with
 * LF, and qemu-ga prefixes the reply to `guest-sync-delimited` with a 0xFF byte. Bytes
 * before a message's opening `{` (0xFF, stray output, garbage before the greeting) are
 * skipped and counted. A line that still is not a JSON object is reported, not thrown,
 * so the caller decides whether that is fatal.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";

/** Default cap on one message, as qemu-ga caps its input (64 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** What the decoder found in the stream. */
export type Decoded =
  | { kind: "message"; value: Record<string, unknown> }
  | { kind: "skipped"; bytes: number }
  | { kind: "invalid"; text: string; reason: string }
  | { kind: "oversized"; bytes: number };

const LF = 0x0a;
const OPEN_BRACE = 0x7b;

/**
 * Incremental decoder: feed it chunks as they arrive, in any split.
 *
 * @example
 * ```ts
 * import { MessageDecoder } from "./_framing.ts";
 * const d = new MessageDecoder();
 * const bytes = new TextEncoder().encode('{"return": {}}\r\n');
 * const first = d.push(bytes.subarray(0, 5));
 * const rest = d.push(bytes.subarray(5));
 * if (first.length !== 0 || rest[0].kind !== "message") throw new Error();
 * ```
 */
export class MessageDecoder {
  readonly #max: number;

  /** The cap on one message, in bytes. */
  get maxBytes(): number {
    return this.#max;
  }
  readonly #decoder = new TextDecoder();
  #parts: Uint8Array[] = [];
  #size = 0;
  /** True while the current line grew past the cap: drop until the next LF. */
  #discarding = false;

  constructor(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
    this.#max = maxMessageBytes;
  }

  /** Feeds `chunk`; returns everything that completed. */
  push(chunk: Uint8Array): Decoded[] {
    const out: Decoded[] = [];
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const end = lf < 0 ? chunk.length : lf;
      if (!this.#discarding) {
        this.#parts.push(chunk.subarray(start, end));
        this.#size += end - start;
        if (this.#size > this.#max) {
          out.push({ kind: "oversized", bytes: this.#size });
          this.#parts = [];
          this.#discarding = true;
        }
      }
      if (lf < 0) break;
      if (this.#discarding) {
        this.#discarding = false;
        this.#size = 0;
      } else {
        this.#line(out);
      }
      start = lf + 1;
    }
    return out;
  }

  #line(out: Decoded[]): void {
    const line = this.#parts.length === 1 ? this.#parts[0] : concatBytes(this.#parts);
    this.#parts = [];
    this.#size = 0;
    const brace = line.indexOf(OPEN_BRACE);
    const skipped = brace < 0 ? line.length : brace;
    const junk = line.subarray(0, skipped);
    // Whitespace, the CR of CRLF and qemu-ga's 0xFF delimiter are framing, not garbage.
    if (skipped > 0 && !junk.every((b) => b === 0x0d || b === 0x20 || b === 0x09 || b === 0xff)) {
      out.push({ kind: "skipped", bytes: skipped });
    }
    if (brace < 0) return;
    const text = this.#decoder.decode(line.subarray(brace)).trimEnd();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      out.push({ kind: "invalid", text: text.slice(0, 200), reason: (err as Error).message });
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      out.push({ kind: "invalid", text: text.slice(0, 200), reason: "not a JSON object" });
      return;
    }
    out.push({ kind: "message", value: value as Record<string, unknown> });
  }
}
