/**
 * Writing a small file so that readers see the old content or the new, never half of
 * one: a temp file beside it, then a rename over it.
 *
 * @module
 */
import { dirname } from "node:path";

/**
 * Writes `text` to `path` atomically (temp file in the same directory, then rename),
 * creating the directory if needed. The temp file is removed if anything fails.
 *
 * @example
 * ```ts
 * import { writeTextAtomic } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeTextAtomic(`${dir}/a/state.json`, "{}\n");
 * if (await Deno.readTextFile(`${dir}/a/state.json`) !== "{}\n") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(temp, text, { mode: 0o600 });
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}
