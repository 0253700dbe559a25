/**
 * Which release artifact is this emu (SPEC §10): the target triple of the running
 * platform, the archive name, and version comparison. Pure.
 *
 * @module
 */

/** The `deno compile` targets emu is released for. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** One of {@linkcode TARGETS}. */
export type Target = typeof TARGETS[number];

/**
 * The target triple for an OS and CPU as Deno names them, or `null` if emu is not
 * released for it.
 *
 * @example
 * ```ts
 * import { targetTriple } from "./target.ts";
 * if (targetTriple("darwin", "aarch64") !== "aarch64-apple-darwin") throw new Error();
 * ```
 */
export function targetTriple(os: string, arch: string): Target | null {
  const triple = os === "linux"
    ? `${arch}-unknown-linux-gnu`
    : os === "darwin"
    ? `${arch}-apple-darwin`
    : os === "windows"
    ? `${arch}-pc-windows-msvc`
    : "";
  return (TARGETS as readonly string[]).includes(triple) ? triple as Target : null;
}

/** The manifest's artifact name for a target (`emu-<triple>`). */
export function artifactName(target: Target): string {
  return `emu-${target}`;
}

/** The archive file a release publishes for a target. */
export function archiveName(target: Target): string {
  return `emu-${target}${target.endsWith("windows-msvc") ? ".zip" : ".tar.gz"}`;
}

/**
 * Compares two versions (`1.4.0`, `v1.10.0-rc.1`): numeric parts in order; a
 * pre-release sorts before its release. Returns <0, 0 or >0.
 *
 * @example
 * ```ts
 * import { compareVersions } from "./target.ts";
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
