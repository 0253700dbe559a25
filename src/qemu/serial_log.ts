/**
 * The serial console log QEMU writes (-serial file:): its last lines for error messages,
 * and control characters cleaned out.
 *
 * @module
 */

/** The last `lines` lines of the serial log (control characters and CRs removed). */
export async function serialTail(path: string, lines: number): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return clean(text).split("\n").filter((l) => l.trim() !== "").slice(-lines).join("\n");
}

// Escape sequences and control bytes (but not tab and newline) that guests write.
// deno-lint-ignore no-control-regex
const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f]/g;

/** Drops CRs and terminal control sequences that guests write to the console. */
export function clean(text: string): string {
  return text.replace(/\r/g, "").replace(ESCAPES, "").replace(CONTROLS, "");
}
