/**
 * `emu doctor`: host checks, each ok / warn / fail with what to do. QEMU and the
 * accelerator come from the host probe; home, runtime directory and the profile's ports
 * are checked directly.
 *
 * @module
 */
import { statfsSync } from "node:fs";
import { join } from "node:path";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { checkSocketPath } from "../config/paths.ts";
import { ensureRuntimeDir } from "../config/private_dir.ts";
import { EmuError } from "../errors.ts";
import type { Arch } from "../qemu/cpu_model.ts";
import { installHint } from "../qemu/discover.ts";
import { type Probe, probeHost, type ProbeResult } from "../qemu/probe.ts";
import { firmwareInstallHint, hostKind } from "../qemu/firmware.ts";

/** How a check came out. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the report. */
export interface Check {
  id: string;
  status: CheckStatus;
  summary: string;
  /** Further reasons (e.g. each rejected accelerator). */
  detail?: string[];
  /** What to do about a warn or fail. */
  fix?: string;
}

/** The whole report. */
export interface DoctorReport {
  checks: Check[];
  probe: Probe | null;
}

/** Free space below which the home check warns / fails. */
export const DISK_WARN_BYTES = 10 * 1024 ** 3;
export const DISK_FAIL_BYTES = 2 * 1024 ** 3;

/** Options of {@linkcode runDoctor}. */
export interface DoctorOptions {
  settings: Settings;
  profile: Profile;
  env: Record<string, string | undefined>;
  refresh?: boolean;
  guestArch?: Arch;
  onSpawn?: (what: string) => void;
}

/** Runs every check. Never throws for a failed check: failures are lines of the report. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const checks: Check[] = [];
  const home = checkHome(options.settings);
  checks.push(home);
  checks.push(checkRuntimeDir(options.settings));

  let probe: Probe | null = null;
  // An unwritable home must not stop the QEMU checks: probe with a throw-away cache.
  const scratch = home.status === "fail" ? await Deno.makeTempDir({ prefix: "emu-probe-" }) : null;
  try {
    probe = await probeHost({
      cachePath: scratch === null ? options.settings.layout.probe : join(scratch, "probe.json"),
      env: options.env,
      refresh: options.refresh,
      guestArch: options.guestArch,
      onSpawn: options.onSpawn,
    });
  } catch (err) {
    checks.unshift(probeFailure(err, options.guestArch ?? "x86_64"));
  } finally {
    if (scratch !== null) await Deno.remove(scratch, { recursive: true });
  }
  if (probe !== null) checks.unshift(...probeChecks(probe));
  checks.push(...await checkPorts(options.profile));
  return { checks, probe };
}

/** What firmware-booted images (no `boot` in image.json) of the probed architecture boot with. */
function firmwareCheck(result: ProbeResult): Check {
  if (result.key.guestArch === "x86_64") {
    return {
      id: "firmware",
      status: "ok",
      summary: "firmware SeaBIOS, built into QEMU (for images that boot through firmware)",
    };
  }
  const fw = result.firmware;
  if (fw === null) {
    return {
      id: "firmware",
      status: "warn",
      summary:
        "no UEFI firmware for arm64: images with a kernel in image.json run, images that boot through firmware cannot",
      fix: firmwareInstallHint(hostKind(result.host.os)),
    };
  }
  return {
    id: "firmware",
    status: "ok",
    summary: `UEFI firmware (${fw.layout}): ${fw.path}${
      fw.vars ? `, variables template ${fw.vars}` : " (no variable store)"
    }`,
  };
}

function probeFailure(err: unknown, arch: Arch): Check {
  if (err instanceof EmuError) {
    return { id: "qemu", status: "fail", summary: err.message, fix: err.hint ?? installHint(arch) };
  }
  throw err;
}

function probeChecks({ result, fromCache }: Probe): Check[] {
  const checks: Check[] = [
    {
      id: "qemu",
      status: "ok",
      summary: `QEMU ${result.qemu.version} at ${result.qemu.path}`,
      detail: [
        result.qemu.versionText,
        fromCache ? `probe cached ${result.probedAt} (refresh with --refresh)` : "probed now",
      ],
    },
    result.qemu.img
      ? { id: "qemu-img", status: "ok", summary: `qemu-img at ${result.qemu.img}` }
      : {
        id: "qemu-img",
        status: "fail",
        summary: "qemu-img not found on PATH",
        fix: installHint(result.key.guestArch),
      },
    {
      id: "machine",
      status: "ok",
      summary: `machine type ${result.machine} (versioned, so snapshots stay loadable)`,
    },
  ];
  const hardwareFailed = result.accel.accel === "tcg" && result.accel.rejected.length > 0;
  checks.push({
    id: "accelerator",
    status: hardwareFailed ? "warn" : "ok",
    summary: `accelerator ${result.accel.accel}: ${result.accel.reason}`,
    detail: result.accel.rejected.map((r) => `${r.accel} rejected: ${r.reason}`),
    ...(hardwareFailed
      ? {
        fix:
          "Nothing to do if this host has no usable virtualization (nested VM, CI runner): emu runs under TCG, with slower cold boots; snapshots keep starts fast.",
      }
      : {}),
  });
  checks.push({
    id: "cpu",
    status: "ok",
    summary: `CPU model ${result.cpu.model}: ${result.cpu.reason}`,
  });
  checks.push(firmwareCheck(result));
  checks.push(
    result.snapshots.supported
      ? { id: "snapshots", status: "ok", summary: `RAM snapshots on: ${result.snapshots.reason}` }
      : {
        id: "snapshots",
        status: "warn",
        summary: `RAM snapshots off: ${result.snapshots.reason}`,
        fix: installHint(result.key.guestArch),
      },
  );
  return checks;
}

function checkHome(settings: Settings): Check {
  const home = settings.home;
  try {
    Deno.mkdirSync(home, { recursive: true });
    const probeFile = join(home, `.emu-doctor-${crypto.randomUUID()}`);
    Deno.writeTextFileSync(probeFile, "ok");
    Deno.removeSync(probeFile);
  } catch (err) {
    return {
      id: "home",
      status: "fail",
      summary: `home ${home} is not writable: ${(err as Error).message}`,
      fix: "Fix its permissions, or point --home / EMU_HOME at a writable directory.",
    };
  }
  const fs = statfsSync(home);
  const free = Number(fs.bavail) * Number(fs.bsize);
  const freeText = `${(free / 1024 ** 3).toFixed(1)} GiB free`;
  if (free < DISK_FAIL_BYTES) {
    return {
      id: "home",
      status: "fail",
      summary: `home ${home}: only ${freeText}`,
      fix: "Free disk space: an image plus its snapshot needs a few GiB.",
    };
  }
  if (free < DISK_WARN_BYTES) {
    return {
      id: "home",
      status: "warn",
      summary: `home ${home}: ${freeText}`,
      fix: "Keep at least 10 GiB free for images and snapshots.",
    };
  }
  return { id: "home", status: "ok", summary: `home ${home} is writable, ${freeText}` };
}

function checkRuntimeDir(settings: Settings): Check {
  const dir = settings.runtimeDir;
  try {
    checkSocketPath(join(dir, `${"x".repeat(8)}-${"x".repeat(32)}.qmp`));
    ensureRuntimeDir(dir);
    return {
      id: "runtime_dir",
      status: "ok",
      summary: `socket directory ${dir} (yours, mode 0700)`,
    };
  } catch (err) {
    return {
      id: "runtime_dir",
      status: "fail",
      summary: `socket directory ${dir} is unusable: ${(err as Error).message}`,
      fix: err instanceof EmuError && err.hint
        ? err.hint
        : "Set EMU_RUNTIME_DIR to a short writable directory.",
    };
  }
}

async function checkPorts(profile: Profile): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [name, forward] of Object.entries(profile.ports)) {
    try {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: forward.host });
      listener.close();
      checks.push({
        id: `port:${name}`,
        status: "ok",
        summary: `port ${name}: 127.0.0.1:${forward.host} is free`,
      });
    } catch (err) {
      const inUse = err instanceof Deno.errors.AddrInUse;
      checks.push({
        id: `port:${name}`,
        status: "fail",
        summary: `port ${name}: 127.0.0.1:${forward.host} ${
          inUse ? "is in use by another process" : `cannot be bound: ${(err as Error).message}`
        }`,
        fix: inUse
          ? `Stop what holds it (\`ss -ltnp 'sport = :${forward.host}'\` shows it; an emu instance shows in \`emu status\`), or change ports.${name}.host in emu.json.`
          : `Change ports.${name}.host in emu.json to a free port above 1024.`,
      });
    }
    await Promise.resolve();
  }
  return checks;
}
