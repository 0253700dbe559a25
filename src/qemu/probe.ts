/**
 * The host probe: QEMU, machine type, accelerator (proved by a test guest), CPU model,
 * firmware. The result and every reason are cached in `probe.json`, keyed by what would
 * change them: the QEMU binary (path, size, mtime), the kernel release, the guest
 * architecture.
 *
 * @module
 */
import { dirname } from "node:path";
import { writeTextAtomic } from "../atomic_write.ts";
import { EmuError } from "../errors.ts";
import {
  accelCandidates,
  type AccelDecision,
  chooseAccelerator,
  type TestOutcome,
} from "./accel.ts";
import { formatVersion, MAPPED_RAM_MIN, pickMachineType, versionAtLeast } from "./capabilities.ts";
import { type Accelerator, type Arch, chooseCpuModel, type CpuChoice } from "./cpu_model.ts";
import { findQemu, inspectQemu, installHint, type QemuInstall } from "./discover.ts";
import { findAarch64Firmware, type Firmware } from "./firmware.ts";
import { type HostFacts, hostFacts, normalizeArch } from "./host.ts";
import { runAccelCanary } from "./accel_canary.ts";

/**
 * What a cache entry is valid for. The QEMU binary is identified by path, size and
 * modification time, so a cache hit needs no QEMU process at all; an upgrade changes them.
 */
export interface ProbeKey {
  qemuPath: string;
  qemuSize: number;
  qemuMtime: string;
  kernelRelease: string;
  guestArch: Arch;
}

/** The probe's result, as cached and shown by `emu doctor`. */
export interface ProbeResult {
  key: ProbeKey;
  probedAt: string;
  host: {
    os: string;
    arch: string;
    kernelRelease: string;
    cpuCount: number;
    memoryBytes: number;
    rosetta: boolean;
  };
  qemu: { path: string; version: string; versionText: string; img: string | null };
  machine: string;
  accel: AccelDecision;
  cpu: CpuChoice;
  firmware: Firmware | null;
  /** RAM snapshots need mapped-ram (QEMU ≥ 9.0); without it emu cold-boots. */
  snapshots: { supported: boolean; reason: string };
}

/** Options of {@linkcode probeHost}. */
export interface ProbeOptions {
  /** `probe.json` path. */
  cachePath: string;
  guestArch?: Arch;
  env: Record<string, string | undefined>;
  /** Ignore the cache and probe again. */
  refresh?: boolean;
  /** Scratch directory for the test guest (default: the cache's directory). */
  workDir?: string;
  /** Called before any QEMU process is started (tests assert the cache path spawns none). */
  onSpawn?: (what: string) => void;
}

/** {@linkcode probeHost}'s answer. */
export interface Probe {
  result: ProbeResult;
  fromCache: boolean;
}

/**
 * 2: firmware as code + variable-store template, the arm64 TCG CPU model measured
 * (issue 16); a cache of another schema is probed again.
 */
const CACHE_SCHEMA = 2;

/** Probes the host, or reads a matching cached result. */
export async function probeHost(options: ProbeOptions): Promise<Probe> {
  const facts = await hostFacts();
  const hostArch = normalizeArch(facts.arch);
  if (hostArch === null) {
    throw new EmuError(
      "arch_unsupported",
      `Cannot run guests on a ${facts.arch} host: emu supports x86_64 and aarch64 hosts`,
    );
  }
  const guestArch = options.guestArch ?? hostArch;
  const system = await findQemu(guestArch, options.env);
  const info = await Deno.stat(system);
  const key: ProbeKey = {
    qemuPath: system,
    qemuSize: info.size,
    qemuMtime: info.mtime?.toISOString() ?? "",
    kernelRelease: facts.kernelRelease,
    guestArch,
  };
  if (!options.refresh) {
    const cached = (await readCache(options.cachePath)).find((r) => sameKey(r.key, key));
    // Firmware is looked up at every call (a few stat calls): installing it after a probe
    // must not need --refresh.
    if (cached !== undefined) {
      return { result: { ...cached, firmware: firmwareOf(guestArch, system) }, fromCache: true };
    }
  }
  options.onSpawn?.("qemu --version and -help queries");
  const qemu = await inspectQemu(system, guestArch, options.env);
  const result = await runProbe(facts, hostArch, guestArch, qemu, key, options);
  await writeCache(options.cachePath, result);
  return { result, fromCache: false };
}

async function runProbe(
  facts: HostFacts,
  hostArch: Arch,
  guestArch: Arch,
  qemu: QemuInstall,
  key: ProbeKey,
  options: ProbeOptions,
): Promise<ProbeResult> {
  const machine = pickMachineType(qemu.machines, guestArch);
  if (machine === null) {
    throw new EmuError(
      "qemu_failed",
      `Cannot find a versioned ${
        guestArch === "x86_64" ? "q35" : "virt"
      } machine type in ${qemu.system} -machine help`,
      {
        hint: installHint(guestArch),
      },
    );
  }
  const candidates = accelCandidates({
    os: facts.os,
    hostArch,
    guestArch,
    qemuAccels: qemu.accels,
    kvmDevice: facts.kvmDevice,
    hvSupport: facts.hvSupport,
    rosetta: facts.rosetta,
  });
  const quirks = { appleSme: facts.appleSme, intelMac: facts.intelMac };
  const workDir = options.workDir ?? dirname(options.cachePath);
  await Deno.mkdir(workDir, { recursive: true });
  const results: Partial<Record<Accelerator, TestOutcome>> = {};
  options.onSpawn?.("test guest (tcg)");
  results.tcg = await runAccelCanary(
    qemu.system,
    guestArch,
    "tcg",
    chooseCpuModel({ guest: guestArch, host: hostArch, accel: "tcg" }).model,
    { workDir },
  );
  for (const accel of candidates.toProbe) {
    const cpu =
      chooseCpuModel({ guest: guestArch, host: hostArch, accel, quirks, qemu: qemu.version })
        .model;
    options.onSpawn?.(`test guest (${accel})`);
    results[accel] = await runAccelCanary(qemu.system, guestArch, accel, cpu, {
      workDir,
      deadlineMs: 10_000,
    });
  }
  let decision: AccelDecision;
  try {
    decision = chooseAccelerator(candidates, results);
  } catch (err) {
    throw new EmuError("qemu_failed", `Cannot use ${qemu.system}: ${(err as Error).message}`, {
      hint: installHint(guestArch),
    });
  }
  const supported = versionAtLeast(qemu.version, MAPPED_RAM_MIN);
  return {
    key,
    probedAt: new Date().toISOString(),
    host: {
      os: facts.os,
      arch: facts.arch,
      kernelRelease: facts.kernelRelease,
      cpuCount: facts.cpuCount,
      memoryBytes: facts.memoryBytes,
      rosetta: facts.rosetta,
    },
    qemu: {
      path: qemu.system,
      version: formatVersion(qemu.version),
      versionText: qemu.version.text,
      img: qemu.img,
    },
    machine,
    accel: decision,
    cpu: chooseCpuModel({
      guest: guestArch,
      host: hostArch,
      accel: decision.accel,
      quirks,
      qemu: qemu.version,
    }),
    firmware: firmwareOf(guestArch, qemu.system),
    snapshots: supported
      ? { supported: true, reason: `QEMU ${formatVersion(qemu.version)} has mapped-ram` }
      : {
        supported: false,
        reason: `QEMU ${
          formatVersion(qemu.version)
        } has no mapped-ram (needs ${MAPPED_RAM_MIN.major}.${MAPPED_RAM_MIN.minor}+): emu cold-boots every start`,
      },
  };
}

/** UEFI for aarch64 guests, if installed (needed only by firmware-booted images). */
function firmwareOf(guestArch: Arch, qemuSystem: string): Firmware | null {
  return guestArch === "aarch64" ? findAarch64Firmware(qemuSystem) : null;
}

function sameKey(a: ProbeKey, b: ProbeKey): boolean {
  return a.qemuPath === b.qemuPath && a.qemuSize === b.qemuSize && a.qemuMtime === b.qemuMtime &&
    a.kernelRelease === b.kernelRelease && a.guestArch === b.guestArch;
}

async function readCache(path: string): Promise<ProbeResult[]> {
  try {
    const data = JSON.parse(await Deno.readTextFile(path));
    return data?.schema === CACHE_SCHEMA && Array.isArray(data.results) ? data.results : [];
  } catch {
    // Missing or unreadable: probe again (the cache is only a cache).
    return [];
  }
}

/** Keeps one entry per guest architecture; written to a temp file and renamed into place. */
async function writeCache(path: string, result: ProbeResult): Promise<void> {
  const others = (await readCache(path)).filter((r) => r.key.guestArch !== result.key.guestArch);
  const text = `${
    JSON.stringify({ schema: CACHE_SCHEMA, results: [...others, result] }, null, 2)
  }\n`;
  await writeTextAtomic(path, text).catch((err) => {
    throw new EmuError("home_unusable", `Cannot write ${path}: ${(err as Error).message}`, {
      hint: "Make the emu home writable, or point --home / EMU_HOME at a writable directory.",
    });
  });
}
