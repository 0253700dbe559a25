/** Finding files and directories left under a test's directories. */
import { join } from "node:path";

/** Entries under `dir` (recursively) whose name matches `pattern`; none if `dir` is gone. */
export async function find(dir: string, pattern: RegExp): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (pattern.test(e.name)) found.push(join(d, e.name));
      if (e.isDirectory) await walk(join(d, e.name));
    }
  };
  await walk(dir).catch(() => {});
  return found;
}
