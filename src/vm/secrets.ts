/**
 * Fresh secrets from the host CSPRNG, and the `KEY=VALUE` text piped to the guest's
 * rotate command. Secrets live in memory only; nothing here writes them anywhere.
 *
 * @module
 */
import type { SecretKind } from "../config/profile.ts";

/**
 * A new secret of `kind`: `hexN` → N random bytes as 2N hex digits; `base64urlN` → N
 * random bytes, unpadded base64url.
 *
 * @example
 * ```ts
 * import { generateSecret } from "./secrets.ts";
 * const s = generateSecret("hex32");
 * if (!/^[0-9a-f]{64}$/.test(s)) throw new Error(s);
 * ```
 */
export function generateSecret(kind: SecretKind): string {
  const match = /^(hex|base64url)(\d+)$/.exec(kind);
  if (match === null) throw new RangeError(`Cannot generate a secret of kind ${kind}`);
  const bytes = crypto.getRandomValues(new Uint8Array(Number(match[2])));
  if (match[1] === "hex") return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Fresh values for every secret of the profile. */
export function generateSecrets(secrets: Record<string, SecretKind>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secrets).map(([name, kind]) => [name, generateSecret(kind)]),
  );
}

/** `KEY=VALUE` lines, in the given order, newline-terminated. */
export function keyValueLines(values: Record<string, string>): string {
  return Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join("");
}
