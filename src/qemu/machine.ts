/**
 * Machine options beyond the versioned type (docs/architecture.md, «VM topology and
 * accelerator»), as pure decisions with their reasons: the arm64 interrupt controller
 * and which machines have a VM generation ID device.
 *
 * @module
 */
import type { Accelerator, Arch } from "./cpu_model.ts";

/** The `-machine` value and why it carries the options it does. */
export interface MachineChoice {
  value: string;
  reason: string;
}

/**
 * The `-machine` value for a versioned machine type: on aarch64 the GIC version is named,
 * so a snapshot never depends on a default that could change.
 *
 * @example
 * ```ts
 * import { machineOption } from "./machine.ts";
 * if (machineOption("virt-10.0", "aarch64", "tcg").value !== "virt-10.0,gic-version=3") throw new Error();
 * if (machineOption("pc-q35-10.0", "x86_64", "kvm").value !== "pc-q35-10.0") throw new Error();
 * ```
 */
export function machineOption(machine: string, arch: Arch, accel: Accelerator): MachineChoice {
  if (arch === "x86_64") return { value: machine, reason: "q35: PCIe, the modern x86 machine" };
  if (accel === "kvm") {
    return {
      value: `${machine},gic-version=host`,
      reason: "KVM on arm64: the host's own GIC (many GICv3 hosts cannot run a GICv2 guest)",
    };
  }
  if (accel === "hvf") {
    return {
      value: machine,
      reason: "HVF: QEMU emulates the GIC; its default for virt, as Lima runs it",
    };
  }
  return {
    value: `${machine},gic-version=3`,
    reason: "TCG: GICv3 (more than 8 vCPUs, what arm64 servers have), named so snapshots keep it",
  };
}

/**
 * Whether QEMU offers the `vmgenid` device for this guest architecture (the x86 ACPI
 * device; `qemu-system-aarch64 -device help` has none in QEMU 10). Without it a resumed
 * arm64 guest is not told it was cloned: its RNG reseeds only from the entropy it gathers
 * (the virtio RNG feeds it on resume).
 */
export function hasVmgenid(arch: Arch): boolean {
  return arch === "x86_64";
}
