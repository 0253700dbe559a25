/**
 * Which release artifact is this emu (docs/architecture.md, «Distribution and self-update»): the
 * target triple of the running platform and the archive name (version order lives with the manifest
 * code). Pure.
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

export { compareVersions } from "../artifact/versions.ts";
