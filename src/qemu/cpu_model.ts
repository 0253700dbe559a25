/**
 * The CPU model decision table (docs/architecture.md, «VM topology and accelerator»), as a pure
 * function. Capture and resume must use the same model, and a wrong one hangs or crashes QEMU, so
 * every case is explicit and returns its reason.
 *
 * @module
 */

/** Architectures emu runs guests and hosts on. */
export type Arch = "x86_64" | "aarch64";
/** Accelerators emu knows. */
export type Accelerator = "kvm" | "hvf" | "whpx" | "tcg";

/** Host CPU facts that change the decision. */
export interface CpuQuirks {
  /** Apple M4 and later: Scalable Matrix Extension, which `-cpu host` under HVF cannot run. */
  appleSme?: boolean;
  /** macOS on an Intel CPU: HVF mishandles 1 GiB pages exposed by `-cpu host`. */
  intelMac?: boolean;
}

/** The decision. */
export interface CpuChoice {
  /** The value for `-cpu`, flags included (`host,-pdpe1gb`). */
  model: string;
  reason: string;
}

/**
 * The first QEMU that runs `-cpu host` under HVF on an Apple M4 (whose SME earlier
 * releases could not handle: QEMU issues 2665 and 2721; Lima PR 3044 avoided `host` there).
 */
export const SME_FIXED_IN = { major: 10, minor: 0 } as const;

/**
 * Chooses the `-cpu` value.
 *
 * @example
 * ```ts
 * import { chooseCpuModel } from "./cpu_model.ts";
 * const c = chooseCpuModel({ guest: "aarch64", host: "x86_64", accel: "tcg" });
 * if (c.model !== "neoverse-n1") throw new Error(c.model);
 * ```
 */
export function chooseCpuModel(
  input: {
    guest: Arch;
    host: Arch;
    accel: Accelerator;
    quirks?: CpuQuirks;
    /** The QEMU version (some rows depend on it); unknown means "current". */
    qemu?: { major: number; minor: number };
  },
): CpuChoice {
  const { guest, host, accel, quirks = {} } = input;
  if (accel !== "tcg") {
    if (guest !== host) {
      throw new RangeError(
        `Cannot run a ${guest} guest with ${accel} on a ${host} host: hardware acceleration needs the same architecture`,
      );
    }
    if (accel === "hvf" && quirks.appleSme) {
      const qemu = input.qemu ?? SME_FIXED_IN;
      if (qemu.major < SME_FIXED_IN.major) {
        return {
          model: "cortex-a72",
          reason:
            `Apple M4 (SME) with QEMU ${qemu.major}.${qemu.minor}: before ${SME_FIXED_IN.major}.${SME_FIXED_IN.minor}, -cpu host and max abort under HVF ("host-arm-cpu.sme not found"; QEMU issues 2665, 2721, Lima PR 3044), so a named core HVF runs`,
        };
      }
      return {
        model: "host",
        reason:
          `Apple M4 (SME) with QEMU ${qemu.major}.${qemu.minor}: QEMU ${SME_FIXED_IN.major}.${SME_FIXED_IN.minor} and later keep SME from the guest under HVF, so the host CPU as is`,
      };
    }
    if (accel === "hvf" && quirks.intelMac) {
      return {
        model: "host,-pdpe1gb",
        reason: "Intel Mac: HVF mishandles 1 GiB pages, so host without pdpe1gb",
      };
    }
    if (accel === "whpx") return { model: "max", reason: "WHPX does not offer -cpu host, so max" };
    return { model: "host", reason: `native ${accel}: the host CPU as is` };
  }
  if (guest === host) {
    return {
      model: "max",
      reason: "same-architecture emulation (TCG): every feature TCG emulates",
    };
  }
  if (guest === "aarch64") {
    return {
      model: "neoverse-n1",
      reason:
        "arm64 guest emulated on x86_64: neoverse-n1, the newest of the named cores (Armv8.2 with LSE atomics, which images built for Graviton or Apple silicon may use); measured here they boot within noise of each other and 20-25% faster than max (BENCHMARKS.md, «arm64 guests»)",
    };
  }
  return { model: "qemu64", reason: "x86_64 guest emulated on arm64: the baseline x86_64 model" };
}
