/**
 * Signed stack-image releases on a real HTTP server on 127.0.0.1, made with the real
 * tools (qemu-img, zstd, openssl): for tests that play publisher and attacker at once —
 * several sources, keys and versions on one server.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { TestServer } from "./http_server.ts";
import { ecKeyPair, signFile } from "./openssl.ts";

/** sha256 (hex) of bytes. */
export const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  assert.ok(out.success, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A release key: the private key file and the public key's PEM text. */
export interface Key {
  key: string;
  pem: string;
}

/** A new ECDSA P-256 key pair in `dir`. */
export async function releaseKey(dir: string, name: string): Promise<Key> {
  const pair = await ecKeyPair(dir, name);
  return { key: pair.key, pem: await Deno.readTextFile(pair.pub) };
}

/** One published image release. */
export interface PublishedRelease {
  version: string;
  /** The qcow2 as installed. */
  disk: Uint8Array;
  /** Its entry for a manifest. */
  entry: Record<string, unknown>;
  /** URL path of the image (for counting requests). */
  imagePath: string;
}

/**
 * Publishes a release under `/<prefix>/<version>/`: a qcow2 of `sizeMiB` (distinct sizes
 * give distinct disks) compressed by zstd, SHA256SUMS and its signature by `key`.
 */
export async function publishRelease(
  server: TestServer,
  dir: string,
  options: { prefix: string; version: string; key: Key; sizeMiB: number },
): Promise<PublishedRelease> {
  const work = join(dir, `${options.prefix}-${options.version}`);
  await Deno.mkdir(work, { recursive: true });
  await run(
    "qemu-img",
    ["create", "-q", "-f", "qcow2", "stack-amd64.qcow2", `${options.sizeMiB}M`],
    work,
  );
  await run("zstd", ["-q", "stack-amd64.qcow2", "-o", "stack-amd64.qcow2.zst"], work);
  const disk = await Deno.readFile(join(work, "stack-amd64.qcow2"));
  const zst = await Deno.readFile(join(work, "stack-amd64.qcow2.zst"));
  await Deno.writeTextFile(join(work, "SHA256SUMS"), `${sha(zst)}  stack-amd64.qcow2.zst\n`);
  await signFile(options.key.key, join(work, "SHA256SUMS"), join(work, "SHA256SUMS.sig"));
  const base = `/${options.prefix}/${options.version}`;
  server.file(`${base}/stack-amd64.qcow2.zst`, zst);
  server.file(`${base}/SHA256SUMS`, await Deno.readFile(join(work, "SHA256SUMS")));
  server.file(`${base}/SHA256SUMS.sig`, await Deno.readFile(join(work, "SHA256SUMS.sig")));
  return {
    version: options.version,
    disk,
    imagePath: `${base}/stack-amd64.qcow2.zst`,
    entry: {
      version: options.version,
      released_at: "2026-11-01T00:00:00Z",
      sha256sums_url: `${server.url}${base}/SHA256SUMS`,
      sha256sums_sig_url: `${server.url}${base}/SHA256SUMS.sig`,
      artifacts: { "image-amd64": `${server.url}${base}/stack-amd64.qcow2.zst` },
    },
  };
}

/**
 * Serves `manifest` at `path` and its signature by `key` at `path.sig` (unless `sign` is
 * false); returns the manifest's URL.
 */
export async function publishManifest(
  server: TestServer,
  dir: string,
  path: string,
  manifest: Record<string, unknown>,
  options: { key: Key; sign?: boolean },
): Promise<string> {
  const text = JSON.stringify({ schema_version: 1, ...manifest });
  const file = join(dir, `manifest-${crypto.randomUUID()}.json`);
  await Deno.writeTextFile(file, text);
  server.file(path, new TextEncoder().encode(text));
  if (options.sign !== false) {
    await signFile(options.key.key, file, `${file}.sig`);
    server.file(`${path}.sig`, await Deno.readFile(`${file}.sig`));
  }
  return `${server.url}${path}`;
}

/** Writes an emu.json for a release source with `key`; returns its path. */
export async function releaseProfile(
  dir: string,
  source: string,
  key: Key,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const path = join(dir, `emu-${crypto.randomUUID().slice(0, 8)}.json`);
  await Deno.writeTextFile(
    path,
    JSON.stringify({ name: "shop", image: { source, public_key: key.pem, ...extra } }),
  );
  return path;
}
