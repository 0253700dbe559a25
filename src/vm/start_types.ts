/**
 * The types every way of starting an instance shares — what a start is asked (options),
 * what it knows once under way (the boot context) and what it returns — in a leaf
 * module that imports nothing from `src/vm`, so the start orchestrator and its steps
 * (resume, cold boot, settling the guest) do not import each other in a circle.
 *
 * @module
 */
import type { DownloadProgress } from "../artifact/download.ts";
import type { ImageInfo } from "../artifact/image_json.ts";
import type { InstancePaths } from "../config/paths.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import type { ProbeResult } from "../qemu/probe.ts";
import type { HealthResult } from "./health.ts";
import type { InstanceRecord } from "./record.ts";
import type { Timings } from "./timings.ts";

/** Options of `startInstance`. */
export interface StartOptions {
  settings: Settings;
  profile: Profile;
  profilePath: string | null;
  name: string;
  /** `--port NAME=HOSTPORT` overrides. */
  portOverrides?: Record<string, number>;
  env: Record<string, string | undefined>;
  /** How long the guest may take to become healthy (default 300 s). */
  healthTimeoutMs?: number;
  /** Stop the VM when it does not become healthy (default: leave it for `emu logs`). */
  stopOnFailure?: boolean;
  /** How long to wait for another emu holding the instance lock (default 30 s). */
  lockWaitMs?: number;
  /** Boot from scratch even when a snapshot could be resumed. */
  cold?: boolean;
  /** Skip secret rotation (faster; the guest keeps its current secrets). */
  noRotation?: boolean;
  /** Keep the rotated secrets in the instance's 0600 secrets file for later `emu run`. */
  saveSecrets?: boolean;
  /** Progress lines. */
  onProgress?: (text: string) => void;
  /** Download progress when the image is pulled first. */
  onDownload?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** What `startInstance` did. */
export interface StartResult {
  record: InstanceRecord;
  /** The instance was already running and healthy; nothing was started. */
  alreadyRunning: boolean;
  health: HealthResult[];
  /** Launch to healthy, in milliseconds (0 when already running). */
  bootMs: number;
  /**
   * Milliseconds per phase of this start, from just before QEMU's run disk is made to
   * the record of a healthy instance (`total`); empty when already running.
   */
  timings: Timings;
  /** The secrets rotated into the guest by this start (memory only; empty if none). */
  secrets: Record<string, string>;
  /** Why a resume was not used, if it was not (one line, for the user). */
  fallback: string | null;
}

/** Everything one start knows. */
export interface BootContext {
  options: StartOptions;
  profile: Profile;
  image: ImageInfo;
  probe: ProbeResult;
  ports: Record<string, { guest: number; host: number }>;
  paths: InstancePaths;
  progress: (text: string) => void;
}

/** A resume that failed after launch; the caller cold-boots instead. */
export class ResumeFailed extends Error {}
