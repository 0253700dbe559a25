/**
 * Pulling an image from a signed release manifest: manifest and its signature → the
 * rollback check → the release → {@linkcode pullRelease}. And finding an installed
 * release without the network (`emu start`).
 *
 * @module
 */
import type { PullResult } from "./install.ts";
import { pickRelease } from "./manifest.ts";
import { checkNotRollback, rememberRelease } from "./release_memory.ts";
import { pullRelease, type ReleasePullOptions } from "./release_pull.ts";
import { fetchSignedManifest, requireKey } from "./signed_manifest.ts";

/** Options of {@linkcode pullImage}. */
export interface PullOptions extends ReleasePullOptions {
  /** Manifest URL (https, http, file) or local path. */
  source: string;
  version: string;
  /** The file that remembers each source's newest release (rollback protection). */
  releasesSeen: string;
}

/**
 * Resolves, verifies, downloads and installs the image; reuses an installed one. The
 * manifest's signature is checked before it is read, and a `latest` older than the
 * newest this source has offered before is refused (`rollback_refused`).
 */
export async function pullImage(options: PullOptions): Promise<PullResult> {
  requireKey(options.publicKey);
  const manifest = await fetchSignedManifest(options.source, options.publicKey, options.signal);
  await checkNotRollback(options.releasesSeen, options.source, manifest.latest_stable, {
    named: options.version !== "latest",
    flag: "--version",
  });
  await rememberRelease(options.releasesSeen, options.source, manifest.latest_stable);
  return await pullRelease(pickRelease(manifest, options.version), options);
}
