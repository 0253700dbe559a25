/**
 * Release signing keys for maintainers (`emu image keygen`, `emu image publish`): ECDSA
 * P-256 private keys in PEM (PKCS#8 as emu writes them, or SEC1 as `openssl ecparam
 * -genkey` does), signatures in DER exactly as `openssl dgst -sha256 -sign` writes them,
 * so releases can be made with emu or with openssl and checked by either.
 *
 * @module
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from "node:crypto";
import { EmuError } from "../errors.ts";

/** A loaded signing key. */
export interface SigningKey {
  /** DER ECDSA P-256 / SHA-256 signature of `data`. */
  sign(data: Uint8Array): Uint8Array;
  /** The public key as PEM (`-----BEGIN PUBLIC KEY-----`), for `image.public_key`. */
  publicKeyPem: string;
}

function fromKeyObject(key: KeyObject): SigningKey {
  return {
    sign: (data) => new Uint8Array(sign("sha256", data, key)),
    publicKeyPem: createPublicKey(key).export({ type: "spki", format: "pem" }).toString(),
  };
}

/**
 * Loads a PEM private key and checks that it is ECDSA P-256 (`what` names where it came
 * from, for the error).
 *
 * @throws {EmuError} `signature_invalid` for anything else: RSA, Ed25519, P-384, a
 * public key, or text that is not a key.
 */
export function loadSigningKey(pem: string, what: string): SigningKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new EmuError(
      "signature_invalid",
      `Cannot use ${what} as a signing key: it is not a PEM private key (${
        (err as Error).message
      })`,
      { hint: "Make one with `emu image keygen --out KEY.pem`." },
    );
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== "ec" || curve !== "prime256v1") {
    throw new EmuError(
      "signature_invalid",
      `Cannot use ${what} as a signing key: it is ${
        key.asymmetricKeyType === "ec" ? `an EC key on ${curve}` : `a ${key.asymmetricKeyType} key`
      }, and releases are signed with ECDSA P-256`,
      { hint: "Make one with `emu image keygen --out KEY.pem`." },
    );
  }
  return fromKeyObject(key);
}

/** A new ECDSA P-256 key pair: the private key as PKCS#8 PEM, and the signing key. */
export function generateSigningKey(): { privateKeyPem: string; key: SigningKey } {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    key: fromKeyObject(privateKey),
  };
}
