/**
 * Release versions: semantic versions (SemVer 2.0.0), with an optional leading `v` as
 * Git tags often carry it. Precedence follows the spec (§11): numeric major, minor, patch;
 * a pre-release sorts before its release; pre-release identifiers compare numerically when
 * both are numbers, else as ASCII, a numeric one before an alphanumeric one, and a longer
 * list after its prefix; build metadata is not part of a release label here at all.
 *
 * Written here rather than taken from npm's `semver` (which the tests use as the
 * reference): loading that CommonJS package cost every emu command about 35 ms.
 *
 * @module
 */

const NUM = "0|[1-9]\\d*";
const IDENT = `(?:${NUM}|\\d*[A-Za-z-][0-9A-Za-z-]*)`;
const SEMVER = new RegExp(
  `^v?(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${IDENT}(?:\\.${IDENT})*))?$`,
);

interface Parsed {
  core: [number, number, number];
  pre: string[];
}

function parse(version: string): Parsed | null {
  const m = SEMVER.exec(version);
  if (m === null) return null;
  const core = [Number(m[1]), Number(m[2]), Number(m[3])] as [number, number, number];
  if (!core.every(Number.isSafeInteger)) return null;
  return { core, pre: m[4] === undefined ? [] : m[4].split(".") };
}

/**
 * The canonical form of a version (`v1.4.0` → `1.4.0`), or `null` when it is not a
 * semantic version (build metadata, `+…`, included: a label must name one release).
 *
 * @example
 * ```ts
 * import { parseVersion } from "./versions.ts";
 * if (parseVersion("v1.4.0") !== "1.4.0" || parseVersion("1.4") !== null) throw new Error();
 * if (parseVersion("1.0.0+build") !== null || parseVersion("01.0.0") !== null) throw new Error();
 * ```
 */
export function parseVersion(version: string): string | null {
  return parse(version) === null ? null : version.replace(/^v/, "");
}

function compareIdentifiers(a: string, b: string): number {
  const an = /^\d+$/.test(a);
  const bn = /^\d+$/.test(b);
  if (an && bn) return Number(a) - Number(b);
  if (an) return -1;
  if (bn) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compares two semantic versions by precedence: <0, 0 or >0.
 *
 * @throws {TypeError} when either is not a semantic version.
 * @example
 * ```ts
 * import { compareVersions } from "./versions.ts";
 * if (!(compareVersions("1.10.0", "1.9.9") > 0 && compareVersions("1.0.0-rc.1", "1.0.0") < 0)) throw new Error();
 * if (!(compareVersions("1.0.0-rc-1", "1.0.0-rc-2") < 0)) throw new Error();
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const x = parse(a);
  const y = parse(b);
  if (x === null || y === null) {
    throw new TypeError(`Invalid Version: ${x === null ? a : b}`);
  }
  for (let i = 0; i < 3; i++) {
    if (x.core[i] !== y.core[i]) return x.core[i] - y.core[i];
  }
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const d = compareIdentifiers(x.pre[i], y.pre[i]);
    if (d !== 0) return d;
  }
  return x.pre.length - y.pre.length;
}

/** Whether `version` has a pre-release part (`1.0.0-rc.1`): never picked as "latest". */
export function isPrerelease(version: string): boolean {
  return (parse(version)?.pre.length ?? 0) > 0;
}
