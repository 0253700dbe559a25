/**
 * The order of release versions, for picking the newest release (manifests, GitHub,
 * `emu upgrade`). Pure.
 *
 * @module
 */

/**
 * Compares two versions (`1.4.0`, `v1.10.0-rc.1`): numeric parts in order; a
 * pre-release sorts before its release. Returns <0, 0 or >0.
 *
 * @example
 * ```ts
 * import { compareVersions } from "./versions.ts";
 * if (!(compareVersions("1.10.0", "1.9.9") > 0 && compareVersions("1.0.0-rc.1", "1.0.0") < 0)) throw new Error();
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.replace(/^v/, "").split("-", 2);
    return { nums: core.split(".").map((n) => Number(n) || 0), pre: pre ?? null };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === null) return 1;
  if (y.pre === null) return -1;
  return x.pre.localeCompare(y.pre, undefined, { numeric: true });
}
