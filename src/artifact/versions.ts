/**
 * Release versions: semantic versions (semver.org), with an optional leading `v` as Git
 * tags often carry it. Validation and order come from npm's `semver`, the reference
 * implementation, so pre-release order (`1.0.0-rc-1` < `1.0.0-rc-2` < `1.0.0`) is exact.
 *
 * @module
 */
// @deno-types="@types/semver"
import semver from "semver";

/**
 * The canonical form of a version (`v1.4.0` → `1.4.0`), or `null` when it is not a
 * semantic version.
 *
 * @example
 * ```ts
 * import { parseVersion } from "./versions.ts";
 * if (parseVersion("v1.4.0") !== "1.4.0" || parseVersion("1.4") !== null) throw new Error();
 * ```
 */
export function parseVersion(version: string): string | null {
  const canonical = semver.valid(version);
  // semver.valid forgives spaces and `=`: a version label must be exactly a version.
  return canonical !== null && version.replace(/^v/, "") === canonical ? canonical : null;
}

/**
 * Compares two semantic versions: <0, 0 or >0.
 *
 * @throws {TypeError} when either is not a semantic version.
 * @example
 * ```ts
 * import { compareVersions } from "./versions.ts";
 * if (!(compareVersions("1.10.0", "1.9.9") > 0 && compareVersions("1.0.0-rc.1", "1.0.0") < 0)) throw new Error();
 * ```
 */
export function compareVersions(a: string, b: string): number {
  return semver.compare(a, b);
}

/** Whether `version` has a pre-release part (`1.0.0-rc.1`): never picked as "latest". */
export function isPrerelease(version: string): boolean {
  return semver.prerelease(version) !== null;
}
