/** Real openssl keys and signatures for tests of signed releases. */
import { join } from "node:path";

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** An ECDSA P-256 key pair: `<dir>/<name>.key` (private) and `<dir>/<name>.pub.pem`. */
export async function ecKeyPair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  await openssl(
    ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`],
    dir,
  );
  await openssl(["ec", "-in", `${name}.key`, "-pubout", "-out", `${name}.pub.pem`], dir);
  return { key: join(dir, `${name}.key`), pub: join(dir, `${name}.pub.pem`) };
}

/** Signs `file` into `out` as a release does: `openssl dgst -sha256 -sign` (DER). */
export async function signFile(key: string, file: string, out: string): Promise<void> {
  await openssl(["dgst", "-sha256", "-sign", key, "-out", out, file], "/");
}
