/**
 * Where emu's own releases are and which key signs them. The release workflow fills in
 * the two markers before `deno compile`; a source checkout has neither, so `emu upgrade`
 * there needs `EMU_RELEASE_MANIFEST` and `EMU_RELEASE_PUBLIC_KEY` (PEM text or a file).
 *
 * @module
 */

/** Replaced by the release workflow with the manifest URL. */
const BUILT_IN_MANIFEST = "@@EMU_RELEASE_MANIFEST_URL@@";
/** Replaced by the release workflow with the PEM public key. */
const BUILT_IN_PUBLIC_KEY = "@@EMU_RELEASE_PUBLIC_KEY@@";

const unset = (value: string) => value.startsWith("@@") && value.endsWith("@@");

/**
 * The public key compiled in by the release workflow, or `null` in a source checkout.
 * It also verifies stack image releases whose profile sets no `image.public_key`.
 */
export function builtInPublicKey(): string | null {
  return unset(BUILT_IN_PUBLIC_KEY) ? null : BUILT_IN_PUBLIC_KEY;
}

/** The release manifest and key in effect, or `null` for what is not known. */
export interface ReleaseConfig {
  manifest: string | null;
  publicKey: string | null;
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
  return { manifest, publicKey };
}
