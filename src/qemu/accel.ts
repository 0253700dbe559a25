/**
 * Choosing the accelerator (docs/architecture.md, «VM topology and accelerator») as pure functions:
 * which candidates are worth a test guest, and which one wins given how each test went. Every
 * rejected candidate keeps its reason, for `emu doctor`.
 *
 * Trusting `/dev/kvm` alone is not enough: under nested virtualization it can exist, be
 * writable, and still fail or run far slower than plain emulation.
 *
 * @module
 */
import type { Accelerator, Arch } from "./cpu_model.ts";

/** What decides which accelerators are candidates. */
export interface AccelFacts {
  os: string;
  hostArch: Arch;
  guestArch: Arch;
  /** From `-accel help`. */
  qemuAccels: readonly string[];
  /** `/dev/kvm` state on Linux. */
  kvmDevice?: "rw" | "missing" | "no-access";
  /** macOS `kern.hv_support`. */
  hvSupport?: boolean;
  /** This process runs translated by Rosetta 2. */
  rosetta?: boolean;
}

/** A candidate that was not chosen, and why. */
export interface Rejection {
  accel: Accelerator;
  reason: string;
}

/** Candidates to test, in order of preference, and those ruled out without a test. */
export interface Candidates {
  toProbe: Accelerator[];
  rejected: Rejection[];
}

/**
 * Lists hardware accelerators worth a test guest on this host; TCG is always the
 * fallback and not listed.
 *
 * @example
 * ```ts
 * import { accelCandidates } from "./accel.ts";
 * const c = accelCandidates({ os: "linux", hostArch: "x86_64", guestArch: "x86_64", qemuAccels: ["tcg", "kvm"], kvmDevice: "rw" });
 * if (c.toProbe[0] !== "kvm") throw new Error();
 * ```
 */
export function accelCandidates(facts: AccelFacts): Candidates {
  const toProbe: Accelerator[] = [];
  const rejected: Rejection[] = [];
  const native: Record<string, Accelerator> = { linux: "kvm", darwin: "hvf", windows: "whpx" };
  const accel = native[facts.os];
  if (accel === undefined) return { toProbe, rejected };
  if (facts.guestArch !== facts.hostArch) {
    rejected.push({
      accel,
      reason:
        `the guest is ${facts.guestArch} and the host ${facts.hostArch}: hardware acceleration needs the same architecture`,
    });
    return { toProbe, rejected };
  }
  if (!facts.qemuAccels.includes(accel)) {
    rejected.push({ accel, reason: `this QEMU was built without ${accel} (not in -accel help)` });
    return { toProbe, rejected };
  }
  if (accel === "kvm" && facts.kvmDevice !== "rw") {
    const why = facts.kvmDevice === "missing"
      ? "/dev/kvm does not exist (no KVM in this kernel or VM)"
      : "/dev/kvm is not readable and writable by this user (add yourself to the kvm group)";
    rejected.push({ accel, reason: why });
    return { toProbe, rejected };
  }
  if (accel === "hvf") {
    if (facts.rosetta) {
      rejected.push({
        accel,
        reason: "emu runs under Rosetta 2: install the native arm64 emu and QEMU",
      });
      return { toProbe, rejected };
    }
    if (facts.hvSupport !== true) {
      rejected.push({
        accel,
        reason: "kern.hv_support is not 1 (no Hypervisor.framework support)",
      });
      return { toProbe, rejected };
    }
  }
  toProbe.push(accel);
  return { toProbe, rejected };
}

/** How one test guest run went. */
export type TestOutcome = { ok: true; ms: number } | { ok: false; reason: string };

/** The decision and every reason behind it. */
export interface AccelDecision {
  accel: Accelerator;
  reason: string;
  rejected: Rejection[];
  /** Test guest times, by accelerator, in milliseconds. */
  timings: Partial<Record<Accelerator, number>>;
}

/** A hardware accelerator must run the test guest no slower than this multiple of TCG (+200 ms). */
export const SLOWER_THAN_TCG_FACTOR = 3;

/**
 * Picks the accelerator from the test results: the first hardware candidate that ran
 * the test guest correctly and not much slower than TCG, else TCG.
 *
 * @throws {Error} when even TCG could not run the test guest (QEMU itself is broken).
 */
export function chooseAccelerator(
  candidates: Candidates,
  results: Partial<Record<Accelerator, TestOutcome>>,
): AccelDecision {
  const tcg = results.tcg;
  if (tcg === undefined || !tcg.ok) {
    throw new Error(
      `QEMU could not run its test guest even with TCG: ${tcg && !tcg.ok ? tcg.reason : "not run"}`,
    );
  }
  const rejected = [...candidates.rejected];
  const timings: Partial<Record<Accelerator, number>> = { tcg: tcg.ms };
  for (const accel of candidates.toProbe) {
    const outcome = results[accel];
    if (outcome === undefined) {
      rejected.push({ accel, reason: "not tested" });
      continue;
    }
    if (!outcome.ok) {
      rejected.push({ accel, reason: outcome.reason });
      continue;
    }
    timings[accel] = outcome.ms;
    const limit = SLOWER_THAN_TCG_FACTOR * tcg.ms + 200;
    if (outcome.ms > limit) {
      rejected.push({
        accel,
        reason: `the test guest took ${seconds(outcome.ms)} under ${accel} but ${
          seconds(tcg.ms)
        } under TCG (nested virtualization?)`,
      });
      continue;
    }
    return {
      accel,
      reason: `${accel} ran the test guest in ${seconds(outcome.ms)} (TCG: ${seconds(tcg.ms)})`,
      rejected,
      timings,
    };
  }
  const why = rejected.length === 0
    ? "no hardware accelerator on this host"
    : "no hardware accelerator passed the test";
  return { accel: "tcg", reason: `TCG (software emulation): ${why}`, rejected, timings };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
