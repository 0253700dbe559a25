/**
 * Facts about the host that the accelerator and CPU decisions need. The only module in
 * `src/qemu` that asks the OS about itself.
 *
 * @module
 */
import type { Arch } from "./cpu_model.ts";

/** What emu knows about the host. */
export interface HostFacts {
  os: string;
  arch: string;
  kernelRelease: string;
  cpuCount: number;
  memoryBytes: number;
  /** This process runs translated by Rosetta 2 (macOS). */
  rosetta: boolean;
  /** `/dev/kvm` state (Linux). */
  kvmDevice?: "rw" | "missing" | "no-access";
  /** `kern.hv_support` (macOS). */
  hvSupport?: boolean;
  /** `hw.optional.arm.FEAT_SME` (Apple M4 and later). */
  appleSme?: boolean;
  /** macOS on an Intel CPU. */
  intelMac?: boolean;
}

/** The host architecture as emu names it, or `null` if emu cannot run guests for it. */
export function normalizeArch(arch: string): Arch | null {
  if (arch === "x86_64" || arch === "amd64") return "x86_64";
  if (arch === "aarch64" || arch === "arm64") return "aarch64";
  return null;
}

/** The guest architecture that runs natively here (x86_64 where emu cannot tell). */
export function hostGuestArch(): Arch {
  return normalizeArch(Deno.build.arch) ?? "x86_64";
}

/** Gathers host facts. */
export async function hostFacts(): Promise<HostFacts> {
  const facts: HostFacts = {
    os: Deno.build.os,
    arch: Deno.build.arch,
    kernelRelease: Deno.osRelease(),
    cpuCount: navigator.hardwareConcurrency,
    memoryBytes: Deno.systemMemoryInfo().total,
    rosetta: false,
  };
  if (facts.os === "linux") facts.kvmDevice = await kvmDeviceState();
  if (facts.os === "darwin") {
    facts.hvSupport = (await sysctl("kern.hv_support")) === "1";
    facts.rosetta = (await sysctl("sysctl.proc_translated")) === "1";
    facts.appleSme = (await sysctl("hw.optional.arm.FEAT_SME")) === "1";
    facts.intelMac = facts.arch === "x86_64" && !facts.rosetta;
  }
  return facts;
}

async function kvmDeviceState(): Promise<"rw" | "missing" | "no-access"> {
  try {
    const file = await Deno.open("/dev/kvm", { read: true, write: true });
    file.close();
    return "rw";
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? "missing" : "no-access";
  }
}

async function sysctl(name: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("sysctl", {
      args: ["-n", name],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}
