/**
 * What an instance is doing: process, QEMU run state, each health check, ports, uptime,
 * image and snapshot.
 *
 * @module
 */
import type { Profile } from "../config/profile.ts";
import { QmpClient } from "../protocol/mod.ts";
import { type HealthResult, runHealthChecks } from "./health.ts";
import type { FoundInstance } from "./instance.ts";
import { portUrl } from "./record.ts";

/** One instance's status. */
export interface InstanceStatus {
  name: string;
  /** `running`; `stopped`; `suspended`; `crashed` when the record says running but QEMU is gone. */
  state: "running" | "stopped" | "suspended" | "crashed";
  healthy: boolean;
  pid: number | null;
  /** QMP `query-status` (`running`, `paused`, …), or null when unreachable. */
  vm_status: string | null;
  health: HealthResult[];
  ports: Record<string, { guest: number; host: number; url: string }>;
  uptime_s: number | null;
  boot: "cold" | "resume" | "suspend" | "checkpoint" | null;
  image: { name: string; version: string; sha256: string } | null;
  snapshot: string | null;
  started_at: string | null;
  stopped_at: string | null;
  serial_log: string;
}

/** Gathers the status of a found instance. */
export async function instanceStatus(
  found: FoundInstance,
  profile: Profile,
): Promise<InstanceStatus> {
  const { record, alive, paths } = found;
  const ports = Object.fromEntries(
    Object.entries(record?.ports ?? {}).map((
      [n, p],
    ) => [n, { ...p, url: portUrl(p) }]),
  );
  let vmStatus: string | null = null;
  let health: HealthResult[] = [];
  if (alive) {
    try {
      await using qmp = await QmpClient.connect(paths.qmpSocket, { timeoutMs: 3000 });
      vmStatus = (await qmp.queryStatus({ timeoutMs: 3000 })).status;
    } catch { /* unreachable: reported as null */ }
    const checks = profile.health.filter((c) => record && Object.hasOwn(record.ports, c.port));
    health = await runHealthChecks(checks, record!.ports);
  }
  const state = alive
    ? "running"
    : record?.state === "suspended"
    ? "suspended"
    : record && record.state !== "stopped"
    ? "crashed"
    : "stopped";
  const started = record?.started_at ? Date.parse(record.started_at) : null;
  return {
    name: found.name,
    state,
    healthy: alive && vmStatus === "running" && health.every((h) => h.ok),
    pid: alive ? record!.pid : null,
    vm_status: vmStatus,
    health,
    ports,
    uptime_s: alive && started ? Math.round((Date.now() - started) / 1000) : null,
    boot: record?.boot ?? null,
    image: record
      ? { name: record.image.name, version: record.image.version, sha256: record.image.sha256 }
      : null,
    snapshot: record?.snapshot ?? null,
    started_at: record?.started_at ?? null,
    stopped_at: record?.stopped_at ?? null,
    serial_log: paths.serialLog,
  };
}
