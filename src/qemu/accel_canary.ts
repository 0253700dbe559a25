/**
 * The accelerator canary: a tiny guest (a few instructions that make QEMU exit with a known
 * code) run under a candidate accelerator with a deadline and timed. A hardware accelerator
 * is trusted only after this runs correctly and fast (docs/architecture.md, «VM topology and
 * accelerator»).
 *
 * @module
 */
import { join } from "node:path";
import type { TestOutcome } from "./accel.ts";
import type { Accelerator, Arch } from "./cpu_model.ts";

/**
 * x86 boot sector: `mov al, 0x10; out 0xf4, al; jmp $` then the 0x55AA signature.
 * Writing 0x10 to `isa-debug-exit` at port 0xf4 exits QEMU with (0x10 << 1) | 1 = 33.
 */
export function x86BootSector(): Uint8Array {
  const sector = new Uint8Array(512);
  sector.set([0xb0, 0x10, 0xe6, 0xf4, 0xeb, 0xfe]);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/**
 * AArch64 program for the `virt` machine: PSCI `SYSTEM_OFF` (function 0x84000008) through
 * `hvc #0`, which powers the machine off and QEMU exits 0; then spin. It is loaded 2 MiB
 * into RAM, clear of the device tree QEMU places at the start of RAM.
 */
export function aarch64PowerOff(): Uint8Array {
  const words = [0xd2800100, 0xf2b08000, 0xd4000002, 0x14000000]; // movz x0,#8; movk x0,#0x8400,lsl 16; hvc #0; b .
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w, true));
  return out;
}

/** QEMU's exit code when the x86 test guest ran. */
export const X86_SUCCESS_EXIT = 33;

/** The argv that runs the test guest stored at `program`. */
export function accelCanaryArgs(
  arch: Arch,
  accel: Accelerator,
  cpu: string,
  program: string,
): string[] {
  const common = [
    "-nodefaults",
    "-display",
    "none",
    "-no-reboot",
    "-m",
    "64",
    "-accel",
    accel,
    "-cpu",
    cpu,
  ];
  if (arch === "x86_64") {
    return [
      ...common,
      "-machine",
      "pc",
      "-device",
      "isa-debug-exit,iobase=0xf4,iosize=0x04",
      "-drive",
      `file=${program},format=raw,if=ide`,
    ];
  }
  return [
    ...common,
    "-machine",
    "virt",
    "-device",
    `loader,file=${program},addr=0x40200000,cpu-num=0`,
  ];
}

/** Options of {@linkcode runAccelCanary}. */
export interface AccelCanaryOptions {
  /** Kill the guest after this long (default 10 s). */
  deadlineMs?: number;
  /** Scratch directory for the program file. */
  workDir: string;
}

/**
 * Runs the test guest with `qemu` under `accel`; resolves with how it went (never
 * rejects for a guest failure: the failure is the reason a candidate is rejected).
 */
export async function runAccelCanary(
  qemu: string,
  arch: Arch,
  accel: Accelerator,
  cpu: string,
  options: AccelCanaryOptions,
): Promise<TestOutcome> {
  // One file per run: two emu processes may probe at once, and QEMU locks its disk images.
  const program = join(options.workDir, `.emu-test-guest-${arch}-${crypto.randomUUID()}.bin`);
  await Deno.writeFile(program, arch === "x86_64" ? x86BootSector() : aarch64PowerOff());
  try {
    return await runProgram(qemu, arch, accel, cpu, program, options);
  } finally {
    await Deno.remove(program).catch(() => {});
  }
}

async function runProgram(
  qemu: string,
  arch: Arch,
  accel: Accelerator,
  cpu: string,
  program: string,
  options: AccelCanaryOptions,
): Promise<TestOutcome> {
  const deadlineMs = options.deadlineMs ?? 10_000;
  const started = performance.now();
  const child = new Deno.Command(qemu, {
    args: accelCanaryArgs(arch, accel, cpu, program),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* exited already */ }
  }, deadlineMs);
  const out = await child.output();
  clearTimeout(timer);
  const ms = Math.round(performance.now() - started);
  const expected = arch === "x86_64" ? X86_SUCCESS_EXIT : 0;
  if (timedOut) {
    return {
      ok: false,
      reason: `the test guest did not finish within ${
        (deadlineMs / 1000).toFixed(0)
      } s under ${accel} (it hangs)`,
    };
  }
  if (out.code === expected) return { ok: true, ms };
  const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").filter((l) => l !== "");
  const detail = stderr.length > 0 ? `: ${stderr.slice(-2).join(" / ")}` : "";
  const how = out.signal ? `was killed by ${out.signal}` : `exited ${out.code}`;
  return { ok: false, reason: `QEMU ${how} running the test guest under ${accel}${detail}` };
}
