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
 * Chooses the `-cpu` value.
 *
 * @example
 * ```ts
 * import { chooseCpuModel } from "./cpu_model.ts";
 * const c = chooseCpuModel({ guest: "aarch64", host: "x86_64", accel: "tcg" });
 * if (c.model !== "cortex-a76") throw new Error(c.model);
 * ```
 */
export function chooseCpuModel(
  input: { guest: Arch; host: Arch; accel: Accelerator; quirks?: CpuQuirks },
): CpuChoice {
  const { guest, host, accel, quirks = {} } = input;
  if (accel !== "tcg") {
    if (guest !== host) {
      throw new RangeError(
        `Cannot run a ${guest} guest with ${accel} on a ${host} host: hardware acceleration needs the same architecture`,
      );
    }
    if (accel === "hvf" && quirks.appleSme) {
      return {
        model: "max",
        reason: "Apple M4 or later: -cpu host under HVF fails on SME, so max",
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
      model: "cortex-a76",
      reason: "arm64 guest emulated on x86_64: a widely supported Armv8.2 core",
    };
  }
  return { model: "qemu64", reason: "x86_64 guest emulated on arm64: the baseline x86_64 model" };
}
