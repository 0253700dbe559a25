/**
 * `instance.json`: what emu knows about an instance between commands (docs/architecture.md,
 * «On-disk layout»).
 *
 * @module
 */
import { writeTextAtomic } from "../atomic_write.ts";

/** One port forward as recorded. */
export interface RecordedPort {
  guest: number;
  host: number;
  /** URL scheme from the profile (records written before it existed have none: http). */
  scheme?: string;
}

/**
 * The URL of a forwarded port on this machine.
 *
 * @example
 * ```ts
 * import { portUrl } from "./record.ts";
 * if (portUrl({ guest: 5432, host: 26701, scheme: "postgres" }) !== "postgres://127.0.0.1:26701") throw new Error();
 * ```
 */
export function portUrl(port: RecordedPort): string {
  return `${port.scheme ?? "http"}://127.0.0.1:${port.host}`;
}

/** The instance record. */
export interface InstanceRecord {
  schema: 1;
  name: string;
  /**
   * `starting` until healthy, `running`, `unhealthy` after a failed wait, `stopped`,
   * `suspended` (RAM saved by `emu suspend`; the next start resumes it).
   */
  state: "starting" | "running" | "unhealthy" | "stopped" | "suspended";
  pid: number | null;
  qemu: string;
  ports: Record<string, RecordedPort>;
  sockets: { qmp: string; qga: string };
  image: { dir: string; name: string; version: string; sha256: string };
  snapshot: string | null;
  boot: "cold" | "resume" | "suspend" | "checkpoint";
  /** The checkpoint the instance was restored from (its run disk is built on it). */
  checkpoint?: string | null;
  /** The EMUCFG disk attached (a resume must attach the same one). */
  runtime_iso?: string;
  profile: string | null;
  started_at: string | null;
  healthy_at: string | null;
  stopped_at: string | null;
  stop_method: "powerdown" | "sigterm" | "sigkill" | "already-exited" | null;
}

/** Reads a record, or `null` if there is none (or it is unreadable, which is reported by the caller's state checks). */
export async function readRecord(path: string): Promise<InstanceRecord | null> {
  try {
    const data = JSON.parse(await Deno.readTextFile(path));
    return data?.schema === 1 ? data as InstanceRecord : null;
  } catch {
    return null;
  }
}

/** Writes a record atomically (temp file, rename). */
export async function writeRecord(path: string, record: InstanceRecord): Promise<void> {
  await writeTextAtomic(path, `${JSON.stringify(record, null, 2)}\n`);
}
