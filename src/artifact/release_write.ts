/**
 * Writing releases, for maintainers (`emu image publish`, and the release tooling in
 * `release/` for emu itself): `SHA256SUMS` text, a release's manifest entry, and a
 * manifest with a release added. Pure; the readers in this folder check the result.
 *
 * @module
 */
import { imageArtifactOfFile } from "./descriptor.ts";
import type { Manifest, Release } from "./manifest.ts";
import { compareVersions, isPrerelease } from "./versions.ts";

/** One published file and its sha256. */
export interface Sum {
  name: string;
  sha256: string;
}

/**
 * `SHA256SUMS` as `sha256sum` writes it, sorted by name (what emu and install.sh read).
 *
 * @example
 * ```ts
 * import { sha256SumsText } from "./release_write.ts";
 * const text = sha256SumsText([{ name: "b", sha256: "1".repeat(64) }, { name: "a", sha256: "0".repeat(64) }]);
 * if (!text.startsWith(`${"0".repeat(64)}  a\n`)) throw new Error(text);
 * ```
 */
export function sha256SumsText(sums: readonly Sum[]): string {
  return [...sums].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .map((s) => `${s.sha256}  ${s.name}\n`).join("");
}

/**
 * The manifest entry for release `version` whose files are published under `baseUrl`;
 * `artifactOf` names the files that are artifacts (default: image release files).
 */
export function releaseEntry(
  version: string,
  releasedAt: string,
  baseUrl: string,
  files: readonly string[],
  artifactOf: (fileName: string) => string | null = imageArtifactOfFile,
): Release {
  const base = baseUrl.replace(/\/$/, "");
  const artifacts: Record<string, string> = {};
  for (const f of [...files].sort()) {
    const name = artifactOf(f);
    if (name !== null) artifacts[name] = `${base}/${encodeURIComponent(f)}`;
  }
  return {
    version: version.replace(/^v/, ""),
    released_at: releasedAt,
    sha256sums_url: `${base}/SHA256SUMS`,
    sha256sums_sig_url: `${base}/SHA256SUMS.sig`,
    artifacts,
  };
}

/**
 * `manifest` (or a new one) with `release` added — replacing an entry of the same
 * version —, newest first; `latest_stable` moves to it when it is a stable release
 * (no pre-release part) newer than the current one, so publishing a patch of an older
 * line never moves `latest_stable` back.
 */
export function addRelease(manifest: Manifest | null, release: Release): Manifest {
  const others = (manifest?.releases ?? []).filter((r) => r.version !== release.version);
  const releases = [...others, release].sort((a, b) => compareVersions(b.version, a.version));
  let latest = manifest?.latest_stable ?? release.version;
  if (
    !isPrerelease(release.version) &&
    (manifest === null || compareVersions(release.version, latest) > 0)
  ) {
    latest = release.version;
  }
  return { schema_version: 1, latest_stable: latest, releases };
}
