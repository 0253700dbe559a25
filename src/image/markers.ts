/**
 * Provisioning markers on the serial console (docs/architecture.md, «Guest contract and image
 * build»): the guest prints `EMU_PROVISION_STEP <what>` as it goes, then `EMU_PROVISION_DONE` or
 * `EMU_PROVISION_FAILED <why>`. Pure: turns console bytes into events, across chunk boundaries,
 * ignoring everything else the guest prints.
 *
 * @module
 */
import { clean } from "../qemu/serial_log.ts";

/** What a console line told us. */
export type ProvisionEvent =
  | { kind: "step"; text: string }
  | { kind: "done" }
  | { kind: "failed"; reason: string };

const MARKER = /EMU_PROVISION_(STEP|DONE|FAILED)\b[ \t]*(.*)$/;

/** The event a single console line carries, if any. */
export function parseMarkerLine(line: string): ProvisionEvent | null {
  const m = MARKER.exec(clean(line).trim());
  if (!m) return null;
  const rest = m[2].trim();
  if (m[1] === "DONE") return { kind: "done" };
  if (m[1] === "FAILED") return { kind: "failed", reason: rest || "no reason given" };
  return rest === "" ? null : { kind: "step", text: rest };
}

/**
 * Splits a growing console log into lines and yields their markers. Feed it every new
 * chunk; a line is read only once its newline has arrived.
 *
 * @example
 * ```ts
 * import { MarkerReader } from "./markers.ts";
 * const r = new MarkerReader();
 * const events = [...r.push("boot\r\nEMU_PROVISION_STEP db"), ...r.push("\r\nEMU_PROVISION_DONE\n")];
 * if (events.length !== 2 || events[1].kind !== "done") throw new Error(JSON.stringify(events));
 * ```
 */
export class MarkerReader {
  #partial = "";

  /** The markers of the lines `chunk` completes. */
  push(chunk: string): ProvisionEvent[] {
    const text = this.#partial + chunk;
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    // A console line far longer than any marker is noise: keep memory bounded.
    if (this.#partial.length > 64 * 1024) this.#partial = this.#partial.slice(-4096);
    const events: ProvisionEvent[] = [];
    for (const line of lines) {
      const event = parseMarkerLine(line);
      if (event) events.push(event);
    }
    return events;
  }
}
