/**
 * ECDSA P-256 / SHA-256 signatures as `openssl dgst -sha256 -sign` writes them (DER),
 * verified with WebCrypto (which wants raw r‖s).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { EmuError } from "../errors.ts";

/**
 * Converts a DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs) to the 64-byte r‖s form.
 *
 * @throws {EmuError} `signature_invalid` when it is not well-formed DER for P-256.
 */
export function derToRawSignature(der: Uint8Array): Uint8Array<ArrayBuffer> {
  const bad = () =>
    new EmuError(
      "signature_invalid",
      "Cannot read the signature: it is not a DER ECDSA P-256 signature",
    );
  let at = 0;
  const byte = () => {
    if (at >= der.length) throw bad();
    return der[at++];
  };
  const length = () => {
    const first = byte();
    if (first < 0x80) return first;
    if (first !== 0x81) throw bad();
    return byte();
  };
  if (byte() !== 0x30) throw bad();
  if (length() !== der.length - at) throw bad();
  const out = new Uint8Array(64);
  for (const offset of [0, 32]) {
    if (byte() !== 0x02) throw bad();
    const len = length();
    if (len < 1 || len > 33 || at + len > der.length) throw bad();
    let value = der.subarray(at, at + len);
    at += len;
    while (value.length > 32 && value[0] === 0) value = value.subarray(1);
    if (value.length > 32) throw bad();
    out.set(value, offset + 32 - value.length);
  }
  if (at !== der.length) throw bad();
  return out;
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/**
 * The fingerprint of a PEM public key: sha256 (hex) of its DER SubjectPublicKeyInfo, as
 * `openssl pkey -pubin -outform DER | sha256sum` prints it. Image cache entries record
 * the key that vouched for them.
 *
 * @throws {EmuError} `signature_invalid` when the text is not base64 PEM.
 * @example
 * ```ts
 * import { keyFingerprint } from "./signature.ts";
 * const pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
 * // sha256 of the three bytes that "AAAA" encodes
 * if (!keyFingerprint(pem).startsWith("709e80c88487a241")) throw new Error();
 * ```
 */
export function keyFingerprint(pem: string): string {
  try {
    return createHash("sha256").update(pemBody(pem)).digest("hex");
  } catch (err) {
    throw new EmuError(
      "signature_invalid",
      `Cannot use the public key: it is not PEM (${(err as Error).message})`,
      { hint: "Set image.public_key in emu.json to the PEM the releases are signed with." },
    );
  }
}

/** Imports a PEM `PUBLIC KEY` (SPKI) for ECDSA P-256 verification. */
export async function importPublicKey(pem: string): Promise<CryptoKey> {
  let der: Uint8Array<ArrayBuffer>;
  try {
    der = pemBody(pem);
    return await crypto.subtle.importKey(
      "spki",
      der,
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
  } catch (err) {
    throw new EmuError(
      "signature_invalid",
      `Cannot use the public key: it is not a PEM ECDSA P-256 public key (${
        (err as Error).message
      })`,
      {
        hint: "Set image.public_key in emu.json to the PEM the release is signed with.",
      },
    );
  }
}

/**
 * Verifies `signatureDer` over `data` with `publicKeyPem`.
 *
 * @throws {EmuError} `signature_invalid` when it does not verify.
 */
export async function verifySignature(
  publicKeyPem: string,
  data: Uint8Array<ArrayBuffer>,
  signatureDer: Uint8Array,
  what: string,
): Promise<void> {
  const key = await importPublicKey(publicKeyPem);
  const ok = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    derToRawSignature(signatureDer),
    data,
  );
  if (!ok) {
    throw new EmuError(
      "signature_invalid",
      `Cannot trust ${what}: its signature does not verify with the configured public key`,
      {
        hint:
          "The file was altered or signed with another key; nothing was installed. Check image.public_key.",
      },
    );
  }
}
