/**
 * Launch QEMU for a spec and wait until the guest agent answers and every health check
 * passes — the common part of a cold boot and of a capture.
 *
 * @module
 */
import type { HealthCheck } from "../config/profile.ts";
import { QgaClient } from "../protocol/mod.ts";
import { buildArgv, type VmSpec } from "../qemu/argv.ts";
import { launchQemu } from "../qemu/process.ts";
import { type HealthResult, waitHealthy } from "./health.ts";

/** Options of {@linkcode waitReady}. */
export interface ReadyOptions {
  qgaSocket: string;
  checks: readonly HealthCheck[];
  ports: Record<string, { host: number }>;
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (text: string) => void;
}

/** Waits for the guest agent, then for every health check. */
export async function waitReady(options: ReadyOptions): Promise<HealthResult[]> {
  const started = Date.now();
  options.onProgress?.("waiting for the guest agent");
  // Connecting is the check: the agent answered guest-sync-delimited.
  await (await QgaClient.connect(options.qgaSocket, {
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  })).close();
  return await waitHealthy(options.checks, options.ports, {
    timeoutMs: Math.max(1000, options.timeoutMs - (Date.now() - started)),
    signal: options.signal,
    onWaiting: options.onProgress,
  });
}

/** Launches QEMU (daemonized) for `spec`; returns its pid. */
export function launch(qemu: string, spec: VmSpec): Promise<number> {
  return launchQemu(qemu, buildArgv(spec), { pidFile: spec.pidFile! });
}
