/**
 * A private emu home, socket directory and free host ports for one VM test, with the fast
 * fixture as the profile; and a check that nothing is left behind.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { type CliResult, spawnEmu } from "./cli.ts";
import { requireTool } from "./require.ts";

/** One test's emu environment. */
export interface VmEnv {
  dir: string;
  home: string;
  runtimeDir: string;
  profile: string;
  env: Record<string, string>;
  /** `emu --config <fixture profile> args…` as a real process. */
  emu(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
}

/** sha256 of the fast fixture's public placeholder secret (fixtures/README.md). */
export const PLACEHOLDER_SECRET_SHA256 = createHash("sha256").update("placeholder-not-a-secret")
  .digest("hex");

/**
 * The fast fixture guest's health page (fixtures/fast/health) on host port `port`: the
 * instance it names and the sha256 of its current API secret (never the secret).
 */
export async function fastGuestHealth(
  port: number,
): Promise<{ instance: string; secretSha256: string }> {
  const body = await (await fetch(`http://127.0.0.1:${port}/cgi-bin/health`)).text();
  return {
    instance: /^instance=(.*)$/m.exec(body)?.[1] ?? "",
    secretSha256: /api_secret_sha256=([0-9a-f]{64})/.exec(body)![1],
  };
}

/** The sha256 of the fast fixture guest's current API secret. */
export async function secretHash(port: number): Promise<string> {
  return (await fastGuestHealth(port)).secretSha256;
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** QEMU processes whose command line mentions `needle`. */
export async function qemuProcessesWith(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
    if (cmd.startsWith("qemu-system") || cmd.includes("/qemu-system")) {
      if (cmd.replaceAll("\0", " ").includes(needle)) {
        const stat = await Deno.readTextFile(`/proc/${e.name}/stat`).catch(() => "");
        if (!/\) Z /.test(stat)) pids.push(Number(e.name));
      }
    }
  }
  return pids;
}

/**
 * What booting the fast fixture needs: QEMU, qemu-ga (copied into the guest) and apt (the
 * guest is built from Debian packages). Fails in CI, skips loudly elsewhere (require.ts).
 */
export async function requireVmTools(): Promise<boolean> {
  return await requireTool("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)") &&
    await requireTool("qemu-ga", "qemu-guest-agent (bookworm-backports)", ["--version"]) &&
    await requireTool("apt-get", "apt (the fixture guest is built from Debian packages)", [
      "--version",
    ]);
}

/**
 * Runs `fn` with a fresh environment (the fast fixture's profile unless `options.profile`
 * gives another); afterwards stops anything left, and asserts no
 * QEMU process, socket or temp file of this test survives.
 */
export async function withVmEnv(
  fn: (vm: VmEnv) => Promise<void>,
  options: { profile?: () => Promise<string> } = {},
): Promise<void> {
  if (!await requireVmTools()) return;
  const profile = options.profile
    ? await options.profile()
    : (await ensureFastFixture({ log: () => {} })).profile;
  const dir = await Deno.makeTempDir({ prefix: "emu-vm-" });
  const vm: VmEnv = {
    dir,
    home: join(dir, "home"),
    runtimeDir: join(dir, "run"),
    profile,
    env: { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run") },
    emu: (args, extraEnv = {}) =>
      spawnEmu(["--config", profile, ...args], { env: { ...vm.env, ...extraEnv } }),
  };
  try {
    await fn(vm);
  } finally {
    await vm.emu(["reset", "--all"]).catch(() => {});
    const left = await qemuProcessesWith(dir);
    for (const pid of left) Deno.kill(pid, "SIGKILL");
    const sockets = await Array.fromAsync(Deno.readDir(vm.runtimeDir)).catch(() => []);
    await Deno.remove(dir, { recursive: true });
    assert.deepEqual(left, [], "no QEMU process outlives the test");
    assert.deepEqual(sockets.map((s) => s.name), [], "no socket is left in the runtime dir");
  }
}
