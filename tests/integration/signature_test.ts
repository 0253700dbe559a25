/** ECDSA P-256 signatures made by the real openssl CLI, verified by emu with WebCrypto. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { derToRawSignature, verifySignature } from "../../src/artifact/signature.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

async function withKeys(fn: (dir: string, pem: string, otherPem: string) => Promise<void>) {
  if (!await requireTool("openssl", "openssl", ["version"])) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-sig-" });
  try {
    for (const name of ["key", "other"]) {
      await openssl(
        ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.pem`],
        dir,
      );
      await openssl(["ec", "-in", `${name}.pem`, "-pubout", "-out", `${name}.pub`], dir);
    }
    await fn(
      dir,
      await Deno.readTextFile(join(dir, "key.pub")),
      await Deno.readTextFile(join(dir, "other.pub")),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "signature: openssl dgst -sha256 -sign verifies; tampered data, wrong key, bad DER are refused",
  needs(TOOLS.openssl),
  () =>
    withKeys(async (dir, pem, otherPem) => {
      const data = new TextEncoder().encode(`${"a".repeat(64)}  stack-amd64.qcow2.zst\n`);
      await Deno.writeFile(join(dir, "SHA256SUMS"), data);
      // Several signatures: DER integers of 32 and 33 bytes (leading zero) both occur.
      for (let i = 0; i < 8; i++) {
        await openssl(
          ["dgst", "-sha256", "-sign", "key.pem", "-out", "SHA256SUMS.sig", "SHA256SUMS"],
          dir,
        );
        const sig = await Deno.readFile(join(dir, "SHA256SUMS.sig"));
        assert.equal(derToRawSignature(sig).length, 64);
        await verifySignature(pem, data, sig, "SHA256SUMS");
        const tampered = data.slice();
        tampered[0] ^= 1;
        await assert.rejects(verifySignature(pem, tampered, sig, "SHA256SUMS"), {
          code: "signature_invalid",
          message:
            "Cannot trust SHA256SUMS: its signature does not verify with the configured public key",
        });
        await assert.rejects(verifySignature(otherPem, data, sig, "SHA256SUMS"), {
          code: "signature_invalid",
        });
        await assert.rejects(
          verifySignature(pem, data, sig.subarray(0, sig.length - 1), "SHA256SUMS"),
          {
            message: "Cannot read the signature: it is not a DER ECDSA P-256 signature",
          },
        );
      }
      await assert.rejects(
        verifySignature(
          "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
          data,
          new Uint8Array(8),
          "x",
        ),
        {
          code: "signature_invalid",
          message: /^Cannot use the public key/,
        },
      );
    }),
);
