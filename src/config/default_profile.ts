/**
 * The built-in profile: the demo stack (PostgreSQL + a small HTTP API), used when there
 * is no `emu.json` in the working directory and no `--config`.
 *
 * @module
 */
import { join } from "node:path";

/** Where `deno task demo` installs a locally built demo image under the emu home. */
export function localDemoImage(home: string): string {
  return join(home, "demo", "image");
}

/**
 * The demo profile as `emu.json` would spell it. Its image is the local image directory
 * that `deno task demo` builds under the emu home; or, with `release` (a released emu,
 * when there is no local build), the demo stack's signed GitHub releases.
 */
export function defaultProfileJson(
  home: string,
  release: { source: string; publicKey: string } | null = null,
): Record<string, unknown> {
  return {
    name: "demo",
    image: release === null
      ? { source: localDemoImage(home), version: "latest" }
      : { source: release.source, version: "latest", public_key: release.publicKey },
    vm: { memory_mib: 1024, cpus: 2 },
    ports: {
      api: { guest: 8080, host: 26700 },
      db: { guest: 5432, host: 26701, scheme: "postgres" },
    },
    health: [{ name: "api", port: "api", path: "/health", status: 200 }],
    secrets: { API_SECRET: "hex32", DB_PASSWORD: "hex32" },
    rotate: { command: "/usr/local/bin/emu-rotate", timeout_s: 60 },
  };
}
