/**
 * What every reliability scenario (RELIABILITY.md) shares: a private emu home, socket
 * directory and temp directory with the fast fixture's profile; emu run in-process (so
 * its open descriptors can be counted) or as a real process (so it can be killed); a
 * seeded random source; and the leak check every scenario ends with — no QEMU process,
 * socket or temp file of the scenario survives, and the home does not grow.
 *
 * Counts and seeds come from the environment, so a longer soak is one variable away:
 * `EMU_SOAK_SCALE` (default 1) multiplies every repetition count; `EMU_SOAK_SEED` fixes
 * the random kill points (default: a fresh seed, printed).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { runCli } from "../../src/cli/run.ts";
import type { CliIo } from "../../src/cli/io.ts";
import { type CliResult, MAIN } from "../_helpers/cli.ts";
import { qemuProcessesWith } from "../_helpers/vm_env.ts";

export { freePort, qemuProcessesWith } from "../_helpers/vm_env.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** How many times a scenario repeats: `base` × `EMU_SOAK_SCALE`. */
export function repeat(base: number): number {
  const scale = Number(Deno.env.get("EMU_SOAK_SCALE") ?? "1");
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** The seed of this run's random kill points (printed, so a failure can be replayed). */
export const SEED = Number(Deno.env.get("EMU_SOAK_SEED") ?? Math.floor(Math.random() * 2 ** 31));

/** A small seeded PRNG (mulberry32): the same seed gives the same kill points. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One scenario's environment. */
export interface SoakEnv {
  dir: string;
  home: string;
  runtimeDir: string;
  tmp: string;
  profile: string;
  env: Record<string, string>;
  /** emu in this process (descriptors it leaks stay in this process). */
  emuIn(args: string[]): Promise<CliResult>;
  /** emu as a real process. */
  emu(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  /** emu as a real process, not awaited: for killing it mid-way. */
  spawn(args: string[], extraEnv?: Record<string, string>): Deno.ChildProcess;
}

/** Options of {@linkcode withSoakEnv}. */
export interface SoakEnvOptions {
  /** Use this directory as the emu home (a small tmpfs, for instance). */
  home?: string;
  /** A profile other than the fast fixture's, made in the scenario's directory. */
  profile?: (dir: string) => Promise<string>;
}

/**
 * Runs `fn` in a fresh environment; afterwards resets every instance and asserts that
 * nothing leaked (see {@linkcode assertNothingLeaked}).
 */
export async function withSoakEnv(
  fn: (s: SoakEnv) => Promise<void>,
  options: SoakEnvOptions = {},
): Promise<void> {
  const fixture = await ensureFastFixture({ log: () => {} });
  const dir = await Deno.makeTempDir({ prefix: "emu-soak-" });
  const tmp = join(dir, "tmp");
  await Deno.mkdir(tmp);
  const home = options.home ?? join(dir, "home");
  const env = { EMU_HOME: home, EMU_RUNTIME_DIR: join(dir, "run"), TMPDIR: tmp, NO_COLOR: "1" };
  const profile = options.profile ? await options.profile(dir) : fixture.profile;
  const argv = (args: string[]) => ["--config", profile, ...args];
  const s: SoakEnv = {
    dir,
    home,
    runtimeDir: env.EMU_RUNTIME_DIR,
    tmp,
    profile,
    env,
    emuIn: (args) => runInProcess(argv(args), env),
    emu: async (args, extraEnv = {}) => {
      const out = await s.spawn(args, extraEnv).output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
    },
    spawn: (args, extraEnv = {}) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--config", CONFIG, MAIN, ...argv(args)],
        env: { ...env, ...extraEnv },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn(),
  };
  let failure: unknown = null;
  try {
    await fn(s);
  } catch (err) {
    failure = err;
  }
  await s.emu(["reset", "--all"]).catch(() => {});
  const left = await qemuProcessesWith(dir);
  const leftHome = options.home ? await qemuProcessesWith(options.home) : [];
  const described = await Promise.all([...left, ...leftHome].map(describeQemu));
  for (const pid of [...left, ...leftHome]) Deno.kill(pid, "SIGKILL");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  // The scenario's own failure first: the leftovers are usually its consequence.
  if (failure) throw failure;
  assert.deepEqual(described, [], "no QEMU process outlives the scenario");
}

/** `pid name-of-the-VM` of a QEMU, for a failure message. */
async function describeQemu(pid: number): Promise<string> {
  const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
  const args = cmd.split("\0");
  return `${pid} -name ${args[args.indexOf("-name") + 1] ?? "?"}`;
}

async function runInProcess(args: string[], env: Record<string, string>): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const decoder = new TextDecoder();
  const io: CliIo = {
    stdout: (t) => stdout += t,
    stderr: (t) => stderr += t,
    stdoutBytes: (b) => stdout += decoder.decode(b),
    stderrBytes: (b) => stderr += decoder.decode(b),
    env: { ...Deno.env.toObject(), ...env },
    cwd: Deno.cwd(),
    stderrIsTerminal: false,
    uid: Deno.uid(),
    tmpDir: env.TMPDIR,
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** What a scenario could leave behind. */
export interface Leftovers {
  qemu: number[];
  sockets: string[];
  tmp: string[];
}

/** QEMU processes, sockets and temp files of this environment that exist now. */
export async function leftovers(s: SoakEnv): Promise<Leftovers> {
  const names = async (d: string) =>
    (await Array.fromAsync(Deno.readDir(d)).catch(() => [])).map((e) => e.name).sort();
  return {
    qemu: await qemuProcessesWith(s.dir),
    sockets: await names(s.runtimeDir),
    tmp: await names(s.tmp),
  };
}

/** Asserts that no QEMU process, socket or temp file of the environment is left. */
export async function assertNothingLeaked(s: SoakEnv, when: string): Promise<void> {
  assert.deepEqual(await leftovers(s), { qemu: [], sockets: [], tmp: [] }, `leftovers ${when}`);
}

/** This process's open descriptors (Linux: /proc/self/fd). */
export function openDescriptors(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Bytes allocated under `dir` (sparse files count what they hold, not their length). */
export async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      const st = await Deno.lstat(p).catch(() => null);
      if (!st) continue;
      total += (st.blocks ?? 0) * 512;
      if (st.isDirectory) await walk(p);
    }
  };
  await walk(dir).catch(() => {});
  return total;
}

/** Asserts a command succeeded, showing its stderr if not. */
export function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}`);
  return r;
}

/**
 * Asserts a failure is one emu explains: exit code not 0, one `error[code]` line whose
 * code is not `internal`, and no stack trace.
 */
export function explained(r: CliResult, what: string): string {
  assert.notEqual(r.code, 0, `${what} should fail`);
  const code = /^error\[([a-z_]+)\]: /m.exec(r.stderr)?.[1];
  assert.ok(code, `${what}: no error[code] line:\n${r.stderr}`);
  assert.notEqual(code, "internal", `${what}: reported as a bug:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `${what}: a stack trace:\n${r.stderr}`);
  return code;
}

/** A figure for RELIABILITY.md, printed in one greppable line. */
export function figure(scenario: string, text: string): void {
  console.log(`SOAK ${scenario}: ${text}`);
}

/** Milliseconds since `start`, as seconds with one decimal. */
export function seconds(start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1);
}

/** Waits until `predicate` holds (checked every 20 ms), at most `timeoutMs`. */
export async function until(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/**
 * The fast fixture published with `emu image publish` (a fresh key, zstd level 3) on
 * `server` under `/1.0.0/`, and a profile in the scenario's directory that pulls it.
 */
export async function publishedFixtureProfile(
  s: SoakEnv,
  server: { url: string; file(path: string, body: Uint8Array): void },
): Promise<string> {
  const fixture = await ensureFastFixture({ log: () => {} });
  const key = join(s.dir, "key.pem");
  const keygen = ok(await s.emu(["image", "keygen", "--out", key]), "keygen");
  const rel = join(s.dir, "rel");
  const base = `${server.url}/1.0.0`;
  ok(
    await s.emu([
      ...["image", "publish", fixture.dir, "--out", rel, "--key", key],
      ...["--version", "1.0.0", "--level", "3", "--base-url", base],
    ]),
    "publish",
  );
  for await (const e of Deno.readDir(rel)) {
    server.file(`/1.0.0/${e.name}`, await Deno.readFile(join(rel, e.name)));
  }
  const profile = JSON.parse(await Deno.readTextFile(fixture.profile));
  profile.image = { source: `${base}/manifest.json`, public_key: JSON.parse(keygen.stdout) };
  const path = join(s.dir, "published.json");
  await Deno.writeTextFile(path, JSON.stringify(profile));
  return path;
}

/** `emu image build` arguments: the fast fixture with a trivial cloud-config, into `out`. */
export async function fixtureBuildArgs(s: SoakEnv, out: string): Promise<string[]> {
  const fixture = await ensureFastFixture({ log: () => {} });
  const ud = join(s.dir, "ud");
  await Deno.mkdir(ud, { recursive: true });
  await Deno.writeTextFile(join(ud, "user-data"), '#cloud-config\nruncmd:\n  - [sh, -c, "true"]\n');
  return ["image", "build", "--base", fixture.dir, "--user-data", ud, "--out", out];
}
