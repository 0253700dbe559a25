/**
 * The built-in profile: the demo stack (PostgreSQL + a small HTTP API), used when there
 * is no `emu.json` in the working directory and no `--config`.
 *
 * @module
 */
import { join } from "node:path";

/**
 * The demo profile as `emu.json` would spell it. Its image is the local image
 * directory that `deno task demo` builds under the emu home, so the source is filled in
 * by {@linkcode defaultProfileJson} for a given home.
 */
export function defaultProfileJson(home: string): Record<string, unknown> {
  return {
    name: "demo",
    image: { source: join(home, "demo", "image"), version: "latest" },
    vm: { memory_mib: 1024, cpus: 2 },
    ports: {
      api: { guest: 8080, host: 26700 },
      db: { guest: 5432, host: 26701 },
    },
    health: [{ name: "api", port: "api", path: "/health", status: 200 }],
    secrets: { API_SECRET: "hex32", DB_PASSWORD: "hex32" },
    rotate: { command: "/usr/local/bin/emu-rotate", timeout_s: 60 },
  };
}
