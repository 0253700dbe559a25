/**
 * The release manifest, authenticated: `manifest.json.sig` beside it is an ECDSA P-256 /
 * SHA-256 signature over the manifest's exact bytes (DER, as `openssl dgst -sha256 -sign`
 * writes it) by the release key. It is verified before a byte of the manifest is parsed,
 * so a server cannot move a version label onto another release, nor invent releases.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { fetchSmall } from "./fetch_small.ts";
import { type Manifest, MAX_MANIFEST_BYTES, parseManifest } from "./manifest.ts";
import { verifySignature } from "./signature.ts";

/** Largest signature emu reads (a DER P-256 signature is at most 72 bytes). */
export const MAX_SIGNATURE_BYTES = 4096;

/**
 * Where the signature of the manifest at `source` is: the same URL or path with `.sig`
 * appended to its path (a URL's query string stays where it is).
 *
 * @example
 * ```ts
 * import { manifestSignatureSource } from "./signed_manifest.ts";
 * if (manifestSignatureSource("https://x/m.json?t=1") !== "https://x/m.json.sig?t=1") throw new Error();
 * if (manifestSignatureSource("/srv/m.json") !== "/srv/m.json.sig") throw new Error();
 * ```
 */
export function manifestSignatureSource(source: string): string {
  if (!/^(https?|file):/.test(source)) return `${source}.sig`;
  const url = new URL(source);
  url.pathname = `${url.pathname}.sig`;
  return url.href;
}

/** Throws the error for a release source used without a key to check it. */
export function requireKey(publicKey: string | null | undefined): asserts publicKey is string {
  if (!publicKey) {
    throw new EmuError("signature_invalid", "Cannot verify releases: no public key is configured", {
      hint:
        "Set image.public_key in emu.json to the PEM key the releases are signed with (this emu has no release key compiled in).",
    });
  }
}

/**
 * Fetches the manifest at `source` (1 MiB cap) and its signature, verifies the signature
 * with `publicKey`, then parses it.
 *
 * @throws {EmuError} `signature_invalid` for a missing or wrong signature (nothing of the
 * manifest is used), and what {@linkcode parseManifest} throws.
 */
export async function fetchSignedManifest(
  source: string,
  publicKey: string | null | undefined,
  signal?: AbortSignal,
): Promise<Manifest> {
  requireKey(publicKey);
  const bytes = await fetchSmall(source, MAX_MANIFEST_BYTES, "the release manifest", signal);
  const sigSource = manifestSignatureSource(source);
  const signature = await fetchSmall(sigSource, MAX_SIGNATURE_BYTES, "manifest.json.sig", signal)
    .catch((err) => {
      throw new EmuError(
        "signature_invalid",
        `Cannot trust the manifest ${source}: its signature ${sigSource} cannot be read (${
          (err as Error).message
        })`,
        {
          hint:
            "emu uses only signed manifests: the publisher signs manifest.json with the release key (emu image publish writes manifest.json.sig beside it).",
        },
      );
    });
  await verifySignature(publicKey, bytes, signature, `the manifest ${source}`);
  return parseManifest(new TextDecoder().decode(bytes), source);
}
