/**
 * The first step of reading every JSON file emu is handed (manifest, descriptor,
 * image.json): text → a JSON object, or the reader's own error.
 *
 * @module
 */

/**
 * Parses `text` as a JSON object; anything else is `fail`'s error ("not JSON (…)", "not a
 * JSON object").
 *
 * @example
 * ```ts
 * import { parseJsonObject } from "./_json.ts";
 * const fail = (problem: string) => new Error(problem);
 * if (parseJsonObject('{"a":1}', fail).a !== 1) throw new Error();
 * ```
 */
export function parseJsonObject(
  text: string,
  fail: (problem: string) => Error,
): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw fail(`not JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw fail("not a JSON object");
  }
  return raw as Record<string, unknown>;
}
