/**
 * Whether a path names something, for the checks that only branch on it (a missing
 * snapshot disk, an instance directory, a cached image).
 *
 * @module
 */

/**
 * Whether `path` exists (symlinks followed). Any failure to stat it — not there, a
 * dangling link, no permission — counts as absent: the callers then take the path that
 * creates it or reports it missing.
 *
 * @example
 * ```ts
 * import { exists } from "./exists.ts";
 * const dir = await Deno.makeTempDir();
 * if (!(await exists(dir)) || await exists(`${dir}/nothing`)) throw new Error();
 * await Deno.remove(dir);
 * ```
 */
export async function exists(path: string | URL): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}
