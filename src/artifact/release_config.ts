/**
 * Where emu's own releases are and which key signs them. The release workflow fills in
 * the markers before `deno compile`; a source checkout has none, so `emu upgrade` there
 * needs `EMU_RELEASE_MANIFEST` and `EMU_RELEASE_PUBLIC_KEY` (PEM text or a file), and the
 * built-in demo profile finds the demo stack's releases with `EMU_RELEASE_REPO`.
 *
 * @module
 */

/** Replaced by the release workflow with the manifest URL. */
const BUILT_IN_MANIFEST = "@@EMU_RELEASE_MANIFEST_URL@@";
/** Replaced by the release workflow with the PEM public key. */
const BUILT_IN_PUBLIC_KEY = "@@EMU_RELEASE_PUBLIC_KEY@@";
/** Replaced by the release workflow with emu's repository (`OWNER/NAME`). */
const BUILT_IN_REPO = "@@EMU_REPO@@";

/** The tag prefix of the demo stack's releases in emu's repository (`demo-v1.0.0`). */
export const DEMO_TAG_PREFIX = "demo-v";

const unset = (value: string) => value.startsWith("@@") && value.endsWith("@@");

/**
 * The public key compiled in by the release workflow, or `null` in a source checkout.
 * It also verifies stack image releases whose profile sets no `image.public_key`.
 */
export function builtInPublicKey(): string | null {
  return unset(BUILT_IN_PUBLIC_KEY) ? null : BUILT_IN_PUBLIC_KEY;
}

/** The release manifest, key and repository in effect, or `null` for what is not known. */
export interface ReleaseConfig {
  manifest: string | null;
  publicKey: string | null;
  /** emu's GitHub repository (`OWNER/NAME`), where the demo stack is released too. */
  repo: string | null;
}

/** Environment overrides first, then what was compiled in. */
export async function releaseConfig(
  env: Record<string, string | undefined>,
): Promise<ReleaseConfig> {
  const manifest = env.EMU_RELEASE_MANIFEST ||
    (unset(BUILT_IN_MANIFEST) ? null : BUILT_IN_MANIFEST);
  let publicKey = env.EMU_RELEASE_PUBLIC_KEY || builtInPublicKey();
  if (publicKey !== null && !publicKey.startsWith("-----BEGIN")) {
    publicKey = await Deno.readTextFile(publicKey);
  }
  const repo = env.EMU_RELEASE_REPO || (unset(BUILT_IN_REPO) ? null : BUILT_IN_REPO);
  return { manifest, publicKey, repo };
}

/**
 * Where the built-in demo profile pulls the demo stack from when it was not built here:
 * `github:OWNER/NAME#demo-v` (the tags `demo-v<version>` of emu's own repository), with
 * the release key. `null` when either is unknown (a source checkout).
 */
export function demoRelease(config: ReleaseConfig): { source: string; publicKey: string } | null {
  if (config.repo === null || config.publicKey === null) return null;
  return { source: `github:${config.repo}#${DEMO_TAG_PREFIX}`, publicKey: config.publicKey };
}
