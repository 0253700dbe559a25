/**
 * `emu image build` (docs/architecture.md, «Guest contract and image build»): base image +
 * cloud-init user-data → a published qcow2.
 *
 * Boot the base on a throw-away overlay with a `cidata` seed written by emu's ISO
 * writer, follow the provisioning markers on the serial console, power the guest off,
 * flatten and compress the overlay with `qemu-img convert -c`, hash it and write
 * `image.json` last. On any failure nothing is left at the output paths; the serial log
 * stays for reading.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { IMAGE_JSON } from "../artifact/image_json.ts";
import { sha256File } from "../artifact/cache.ts";
import { ensureRuntimeDir } from "../config/private_dir.ts";
import { EmuError } from "../errors.ts";
import { QmpClient } from "../protocol/mod.ts";
import type { VmSpec } from "../qemu/argv.ts";
import type { Arch } from "../qemu/cpu_model.ts";
import { hostGuestArch } from "../qemu/host.ts";
import { killAndWait, launchQemu, processExists, waitForExit } from "../qemu/process.ts";
import type { ProbeResult } from "../qemu/probe.ts";
import { convertCompressed } from "../qemu/img.ts";
import { createOverlay } from "../qemu/qcow2_overlay.ts";
import { buildArgv } from "../qemu/argv.ts";
import { bootFirmware, provideVarsStore } from "../qemu/firmware.ts";
import { machineOption } from "../qemu/machine.ts";
import { EFI_VARS_FILE } from "../config/filenames.ts";
import { serialTail } from "../qemu/serial_log.ts";
import { resolveBase } from "./base.ts";
import { MarkerReader } from "./markers.ts";
import { checkCloudConfig } from "./cloud_config_schema.ts";
import { checkUserData, writeSeed } from "./seed.ts";

/** Options of {@linkcode buildImage}. */
export interface BuildOptions {
  /** `--base`: a qcow2 or an image directory. */
  base: string;
  /** `--user-data`: the directory with `user-data` (and files it uses). */
  userData: string;
  /** `--out`: the qcow2 to write; `image.json` goes beside it. */
  out: string;
  /** The host probe for the image's architecture (asked once the inputs are checked). */
  probe: (arch: Arch) => Promise<ProbeResult>;
  /** Where the QMP/QGA sockets go (short paths). */
  runtimeDir: string;
  /** The guest architecture (default: the base's, else the host's). */
  arch?: Arch;
  /** How long provisioning may take before emu gives up. */
  timeoutMs: number;
  memoryMib?: number;
  cpus?: number;
  /** `image.json` name and version (default: the output's file name, `0.0.0-dev`). */
  name?: string;
  version?: string;
  /** Refuse user-data that fails cloud-init's schema (checked when cloud-init is installed). */
  strict?: boolean;
  onProgress?: (text: string) => void;
  onWarning?: (text: string) => void;
  signal?: AbortSignal;
}

/** What {@linkcode buildImage} wrote. */
export interface BuildResult {
  disk: string;
  imageJson: string;
  serialLog: string;
  sha256: string;
  size: number;
  provisionMs: number;
  convertMs: number;
}

const POWEROFF_TIMEOUT_MS = 120_000;

/** The file names an output `OUT.qcow2` brings with it. */
export function outputPaths(out: string): {
  dir: string;
  disk: string;
  stem: string;
  kernel: string;
  initrd: string;
  imageJson: string;
  serialLog: string;
} {
  const disk = resolve(out);
  const dir = dirname(disk);
  const stem = basename(disk).replace(/\.qcow2$/, "");
  return {
    dir,
    disk,
    stem,
    kernel: join(dir, `${stem}.vmlinuz`),
    initrd: join(dir, `${stem}.initrd`),
    imageJson: join(dir, IMAGE_JSON),
    serialLog: join(dir, `${stem}.build.log`),
  };
}

/**
 * Builds an image. See the module doc for the sequence.
 *
 * @throws {EmuError} `image_build_input` (bad base, user-data or output), `provision_failed`
 * (the guest reported failure or QEMU exited), `provision_timeout`, `qemu_failed`.
 */
export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const progress = options.onProgress ?? (() => {});
  if (!options.out.endsWith(".qcow2")) {
    throw new EmuError(
      "image_build_input",
      `Cannot write ${options.out}: --out must end in .qcow2`,
      {
        hint: "Name the output like stack-1.0.0.qcow2; image.json is written beside it.",
      },
    );
  }
  const paths = outputPaths(options.out);
  const base = await resolveBase(options.base);
  if (base.arch !== null && options.arch !== undefined && base.arch !== options.arch) {
    throw new EmuError(
      "image_build_input",
      `Cannot build an ${options.arch} image from ${options.base}: the base is ${base.arch}`,
      { hint: "Drop --arch, or give a base of that architecture." },
    );
  }
  const arch = options.arch ?? base.arch ?? hostGuestArch();
  const userData = await checkUserData(resolve(options.userData));
  const schema = await checkCloudConfig(join(resolve(options.userData), "user-data"), userData);
  if (schema.status === "invalid") {
    const list = schema.errors.map((e) => `  ${e}`).join("\n");
    if (options.strict) {
      throw new EmuError(
        "image_build_input",
        `Cannot build from ${options.userData}: its user-data fails cloud-init's schema:\n${list}`,
        { hint: "Fix those keys (cloud-init would ignore or reject them), or drop --strict." },
      );
    }
    options.onWarning?.(
      `${options.userData}/user-data fails cloud-init's schema (cloud-init schema --config-file):\n${list}`,
    );
  }
  const probe = await options.probe(arch);
  const qemuImg = probe.qemu.img;
  if (qemuImg === null) {
    throw new EmuError("qemu_missing", "Cannot build an image: qemu-img is not installed", {
      hint: "Install qemu-utils (Debian) or qemu (Homebrew).",
    });
  }
  await Deno.mkdir(paths.dir, { recursive: true });
  ensureRuntimeDir(options.runtimeDir);
  await cleanStaleBuilds(paths.dir, options.runtimeDir, progress);
  const id = crypto.randomUUID().slice(0, 8);
  const work = join(paths.dir, `${WORK_PREFIX}${id}`);
  await Deno.mkdir(work);
  // Held for the whole build: the lock tells a later build that this one is alive.
  using _workLock = await lockWork(work, true);
  const temps: string[] = [];
  let pid: number | null = null;
  try {
    const overlay = join(work, "work.qcow2");
    await createOverlay(base.disk, overlay);
    const seed = join(work, "seed.iso");
    const files = await writeSeed(resolve(options.userData), seed, options.name ?? paths.stem);
    progress(`seed: ${files.join(", ")}`);
    await Deno.writeTextFile(paths.serialLog, "");
    const spec: VmSpec = {
      arch,
      machine: machineOption(probe.machine, arch, probe.accel.accel).value,
      accel: probe.accel.accel,
      cpu: probe.cpu.model,
      memoryMib: options.memoryMib ?? 1024,
      cpus: options.cpus ?? 2,
      disk: overlay,
      runtimeIso: seed,
      forwards: [],
      qmpSocket: join(options.runtimeDir, `build-${id}.qmp`),
      qgaSocket: join(options.runtimeDir, `build-${id}.qga`),
      serialLog: paths.serialLog,
      name: `build-${id}`,
      pidFile: join(work, "qemu.pid"),
      ...(base.boot
        ? {
          kernel: { path: base.boot.kernel, initrd: base.boot.initrd, append: base.boot.append },
        }
        : {}),
    };
    const firmware = bootFirmware({
      arch,
      directKernel: base.boot !== undefined,
      found: probe.firmware,
      vars: join(work, EFI_VARS_FILE),
      qemuPath: probe.qemu.path,
      os: probe.host.os,
    });
    if (firmware) spec.firmware = firmware;
    await provideVarsStore(firmware, probe.firmware?.vars);
    progress(
      `booting ${basename(options.base)} (${spec.accel}, ${spec.memoryMib} MiB, ${spec.cpus} vCPU)`,
    );
    const timeout = provisioningTimeout(options.timeoutMs, arch, hostGuestArch(), spec.accel);
    if (timeout.note) progress(timeout.note);
    const started = performance.now();
    pid = await launchQemu(probe.qemu.path, buildArgv(spec), { pidFile: spec.pidFile! });
    await followProvisioning(
      pid,
      paths.serialLog,
      { ...options, timeoutMs: timeout.ms },
      started,
      progress,
    );
    const provisionMs = Math.round(performance.now() - started);
    progress(`provisioned in ${(provisionMs / 1000).toFixed(0)} s; powering the guest off`);
    await powerOff(pid, spec.qmpSocket, paths.serialLog);
    pid = null;

    progress("compressing the disk (qemu-img convert -c)");
    const convertStarted = performance.now();
    const diskTemp = `${paths.disk}.tmp-${id}`;
    temps.push(diskTemp);
    await convertCompressed(qemuImg, overlay, diskTemp);
    const convertMs = Math.round(performance.now() - convertStarted);
    progress("hashing");
    const sha256 = await sha256File(diskTemp);
    const size = (await Deno.stat(diskTemp)).size;

    const renames: [string, string][] = [[diskTemp, paths.disk]];
    const boot: Record<string, string> = {};
    if (base.boot) {
      for (
        const [field, from, to] of [
          ["kernel", base.boot.kernel, paths.kernel],
          ["initrd", base.boot.initrd, paths.initrd],
        ] as const
      ) {
        if (from === undefined) continue;
        const temp = `${to}.tmp-${id}`;
        temps.push(temp);
        await Deno.copyFile(from, temp);
        renames.push([temp, to]);
        boot[field] = basename(to);
      }
      if (base.boot.append !== undefined) boot.append = base.boot.append;
    }
    const imageJsonTemp = `${paths.imageJson}.tmp-${id}`;
    temps.push(imageJsonTemp);
    await Deno.writeTextFile(
      imageJsonTemp,
      JSON.stringify(
        {
          schema_version: 1,
          name: options.name ?? paths.stem,
          version: options.version ?? "0.0.0-dev",
          arch,
          disk: basename(paths.disk),
          sha256,
          size,
          source: `emu image build --base ${resolve(options.base)} --user-data ${
            resolve(options.userData)
          }`,
          built_at: new Date().toISOString(),
          ...(base.boot ? { boot } : {}),
        },
        null,
        2,
      ) + "\n",
    );
    // image.json last: until it is renamed, nothing claims the new disk.
    renames.push([imageJsonTemp, paths.imageJson]);
    for (const [from, to] of renames) await Deno.rename(from, to);
    temps.length = 0;
    return {
      disk: paths.disk,
      imageJson: paths.imageJson,
      serialLog: paths.serialLog,
      sha256,
      size,
      provisionMs,
      convertMs,
    };
  } finally {
    if (pid !== null) await killAndWait(pid);
    for (const temp of temps) await Deno.remove(temp).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Build work directories: `.emu-build-<id>` beside the output. */
const WORK_PREFIX = ".emu-build-";

/**
 * The lock of a work directory: `wait` takes it (a new build); otherwise it is only
 * tried, and `null` means another build holds it (alive).
 */
async function lockWork(work: string, wait: true): Promise<Deno.FsFile>;
async function lockWork(work: string, wait: false): Promise<Deno.FsFile | null>;
async function lockWork(work: string, wait: boolean): Promise<Deno.FsFile | null> {
  const file = await Deno.open(join(work, "lock"), { read: true, write: true, create: true });
  if (wait) {
    await file.lock(true);
    return file;
  }
  if (await file.tryLock(true)) return file;
  file.close();
  return null;
}

/**
 * Removes what a build killed mid-way left in `dir`: its work directory, its QEMU (still
 * provisioning: found by the pid file QEMU wrote, and only if its command line names that
 * work directory), its temp files and sockets. A build that is alive holds its work
 * directory's lock and is left alone.
 */
async function cleanStaleBuilds(
  dir: string,
  runtimeDir: string,
  progress: (text: string) => void,
): Promise<void> {
  for (const e of await Array.fromAsync(Deno.readDir(dir))) {
    if (!e.isDirectory || !e.name.startsWith(WORK_PREFIX)) continue;
    const work = join(dir, e.name);
    const lock = await lockWork(work, false).catch(() => null);
    if (lock === null) continue;
    try {
      const pid = Number((await Deno.readTextFile(join(work, "qemu.pid")).catch(() => "")).trim());
      const cmdline = pid > 0
        ? await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "")
        : "";
      if (pid > 0 && processExists(pid) && cmdline.includes(work)) {
        progress(`stopping QEMU (pid ${pid}) of an interrupted build`);
        await killAndWait(pid);
      }
      const id = e.name.slice(WORK_PREFIX.length);
      for (const f of await Array.fromAsync(Deno.readDir(dir))) {
        if (f.isFile && f.name.endsWith(`.tmp-${id}`)) {
          await Deno.remove(join(dir, f.name)).catch(() => {});
        }
      }
      for (const ext of ["qmp", "qga"]) {
        await Deno.remove(join(runtimeDir, `build-${id}.${ext}`)).catch(() => {});
      }
      await Deno.remove(work, { recursive: true });
    } finally {
      lock.close();
    }
  }
}

/** How much longer provisioning may take when the guest's instructions are translated for another architecture. */
export const CROSS_ARCH_TIMEOUT_FACTOR = 3;

/**
 * The provisioning timeout: `--timeout` as given, or scaled by
 * {@linkcode CROSS_ARCH_TIMEOUT_FACTOR} for a guest of another architecture under TCG
 * (an arm64 image built on an x86_64 machine), with the note that says so.
 *
 * @example
 * ```ts
 * import { provisioningTimeout } from "./build.ts";
 * const t = provisioningTimeout(1_800_000, "aarch64", "x86_64", "tcg");
 * if (t.ms !== 5_400_000 || !t.note) throw new Error();
 * if (provisioningTimeout(1_800_000, "x86_64", "x86_64", "tcg").note !== null) throw new Error();
 * ```
 */
export function provisioningTimeout(
  ms: number,
  guest: Arch,
  host: Arch,
  accel: string,
): { ms: number; note: string | null } {
  if (guest === host || accel !== "tcg") return { ms, note: null };
  const scaled = ms * CROSS_ARCH_TIMEOUT_FACTOR;
  return {
    ms: scaled,
    note:
      `an ${guest} guest emulated on this ${host} machine (TCG) provisions slower: waiting up to ${
        (scaled / 1000).toFixed(0)
      } s (--timeout ${(ms / 1000).toFixed(0)} × ${CROSS_ARCH_TIMEOUT_FACTOR})`,
  };
}

/** Reads the console as it grows until DONE; throws on FAILED, QEMU exit or timeout. */
async function followProvisioning(
  pid: number,
  serialLog: string,
  options: BuildOptions,
  started: number,
  progress: (text: string) => void,
): Promise<void> {
  const reader = new MarkerReader();
  const decoder = new TextDecoder();
  const file = await Deno.open(serialLog, { read: true });
  let lastNews = performance.now();
  let step = "booting";
  const chunk = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await file.read(chunk);
      if (n !== null && n > 0) {
        for (const event of reader.push(decoder.decode(chunk.subarray(0, n), { stream: true }))) {
          const elapsed = `${((performance.now() - started) / 1000).toFixed(0)} s`;
          if (event.kind === "done") return;
          if (event.kind === "failed") {
            throw await provisionError(
              "provision_failed",
              `the guest reported failure after ${elapsed}: ${event.reason}`,
              serialLog,
            );
          }
          step = event.text;
          lastNews = performance.now();
          progress(`provisioning: ${step} (${elapsed})`);
        }
        continue;
      }
      const elapsedMs = performance.now() - started;
      if (options.signal?.aborted) {
        throw new EmuError("aborted", "Image build interrupted; nothing was written", {
          hint: `The guest console is in ${serialLog}.`,
        });
      }
      if (!processExists(pid)) {
        throw await provisionError(
          "provision_failed",
          `QEMU exited after ${
            (elapsedMs / 1000).toFixed(0)
          } s before the guest reported EMU_PROVISION_DONE`,
          serialLog,
        );
      }
      if (elapsedMs > options.timeoutMs) {
        throw await provisionError(
          "provision_timeout",
          `the guest did not report EMU_PROVISION_DONE within ${
            (options.timeoutMs / 1000).toFixed(0)
          } s (last step: ${step})`,
          serialLog,
        );
      }
      if (performance.now() - lastNews > 15_000) {
        lastNews = performance.now();
        progress(`provisioning: still ${step} (${(elapsedMs / 1000).toFixed(0)} s)`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    file.close();
  }
}

async function provisionError(
  code: "provision_failed" | "provision_timeout",
  what: string,
  serialLog: string,
): Promise<EmuError> {
  const tail = await serialTail(serialLog, 20);
  return new EmuError(
    code,
    `Cannot build the image: ${what}${
      tail ? `\nlast lines of the guest console:\n${indent(tail)}` : ""
    }`,
    {
      hint: `Nothing was written. The whole console is in ${serialLog}` +
        (code === "provision_timeout" ? "; a slow machine may need a longer --timeout." : "."),
    },
  );
}

function indent(text: string): string {
  return text.split("\n").map((l) => `  ${l}`).join("\n");
}

/** ACPI power-off, then waits for QEMU to exit (the guest flushes its disks first). */
async function powerOff(pid: number, qmpSocket: string, serialLog: string): Promise<void> {
  {
    await using qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 10_000 });
    await qmp.systemPowerdown({ timeoutMs: 10_000 });
  }
  if (!(await waitForExit(pid, POWEROFF_TIMEOUT_MS))) {
    throw await provisionError(
      "provision_failed",
      `the guest reported EMU_PROVISION_DONE but did not power off within ${
        POWEROFF_TIMEOUT_MS / 1000
      } s`,
      serialLog,
    );
  }
}
