/**
 * A measured prototype of a lazy restore (issue 17's stretch), not emu's resume path:
 * can a resume's cost stop growing with the RAM in use?
 *
 * - **eager** (what emu does): anonymous guest RAM; the capture saves it with mapped-ram
 *   and the resume reads every saved page back before the guest runs.
 * - **lazy**: guest RAM is a file (`memory-backend-file`). The capture runs with
 *   `share=on`, so the RAM lives in that file, and saves only the device state
 *   (`x-ignore-shared`). The resume maps the same file with `share=off`: a private,
 *   copy-on-write mapping — the guest's writes never reach the file, so the snapshot
 *   stays pristine without a reflink copy (ext4 here has none) — and loads only the
 *   device state. Pages come in from the page cache when the guest first touches them.
 *
 * For 0–4 GiB of non-zero guest RAM (the fast fixture's FIXTURE_DIRTY_MIB) it prints,
 * per variant: the load (`migrate-incoming` to completed), the first agent answer after
 * `cont`, and the time the guest then takes to read all of its dirtied RAM (where a lazy
 * restore pays what it deferred). QEMU is driven directly with emu's argv builder, QMP
 * and QGA clients. Run with `deno task bench` (needs `deno task fixtures`).
 */
import { join } from "node:path";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { QgaClient, QmpClient } from "../../src/protocol/mod.ts";
import { buildArgv, type VmSpec } from "../../src/qemu/argv.ts";
import { killAndWait, launchQemu, waitForExit } from "../../src/qemu/process.ts";
import { probeHost } from "../../src/qemu/probe.ts";
import { writeRuntimeDisk } from "../../src/vm/_boot.ts";
import { parseImageJson } from "../../src/artifact/image_json.ts";

const MEMORY_MIB = 4608;
const DIRTY_MIB = [0, 512, 1024, 2048, 4096];

const fixture = await ensureFastFixture({ log: () => {} });
const imageDir = join(fixture.profile, "..");
const image = parseImageJson(await Deno.readTextFile(join(imageDir, "image.json")), imageDir);
const dir = await Deno.makeTempDir({ prefix: "emu-lazy-" });
const { result: probe } = await probeHost({
  cachePath: join(dir, "probe.json"),
  env: Deno.env.toObject(),
});

interface Variant {
  name: "eager" | "lazy";
  /** Extra argv: the RAM backend. */
  memory: (ramFile: string, capture: boolean) => string[];
  capabilities: Record<string, boolean>;
}

const VARIANTS: Variant[] = [
  {
    name: "eager",
    memory: () => [],
    capabilities: { "mapped-ram": true, multifd: true, events: true },
  },
  {
    name: "lazy",
    memory: (ramFile, capture) => [
      "-object",
      `memory-backend-file,id=ram0,size=${MEMORY_MIB}M,mem-path=${ramFile},share=${
        capture ? "on" : "off"
      }`,
      "-machine",
      "memory-backend=ram0",
    ],
    capabilities: { "x-ignore-shared": true, events: true },
  },
];

async function run(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${program}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A fresh run overlay on the fixture's disk. */
async function runOverlay(work: string): Promise<void> {
  await Deno.remove(join(work, "run.qcow2")).catch(() => {});
  await run(probe.qemu.img!, [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-b",
    image.disk,
    "-F",
    "qcow2",
    join(work, "run.qcow2"),
  ]);
}

function spec(work: string, incoming: boolean): VmSpec {
  return {
    arch: "x86_64",
    machine: probe.machine,
    accel: probe.accel.accel,
    cpu: probe.cpu.model,
    memoryMib: MEMORY_MIB,
    cpus: 1,
    disk: join(work, "run.qcow2"),
    runtimeIso: join(work, "runtime.iso"),
    forwards: [],
    qmpSocket: join(work, "qmp.sock"),
    qgaSocket: join(work, "qga.sock"),
    serialLog: join(work, "serial.log"),
    kernel: {
      path: image.boot!.kernel,
      initrd: image.boot!.initrd,
      append: image.boot!.append,
    },
    incoming,
    pidFile: join(work, "qemu.pid"),
  };
}

async function waitMigration(qmp: QmpClient): Promise<void> {
  for (;;) {
    const info = await qmp.queryMigrate();
    if (info.status === "completed") return;
    if (info.status === "failed") throw new Error(`migration failed: ${info["error-desc"]}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Cold-boots, waits for the agent (the guest has dirtied its RAM by then), saves, quits. */
async function capture(work: string, v: Variant, dirtyMib: number): Promise<void> {
  await writeRuntimeDisk(join(work, "runtime.iso"), "bench", {
    name: "bench",
    runtime: { FIXTURE_DIRTY_MIB: String(dirtyMib) },
  }, {});
  await runOverlay(work);
  const s = spec(work, false);
  const pid = await launchQemu(
    probe.qemu.path,
    [...buildArgv(s), ...v.memory(join(work, "ram"), true)],
    { pidFile: s.pidFile! },
  );
  (await QgaClient.connect(s.qgaSocket, { timeoutMs: 600_000 })).close();
  // The agent starts before the fixture dirties its RAM: wait for the console's word.
  const deadline = Date.now() + 600_000;
  while (!(await Deno.readTextFile(s.serialLog)).includes("EMU_READY")) {
    if (Date.now() > deadline) throw new Error("the guest never became ready");
    await new Promise((r) => setTimeout(r, 200));
  }
  await using qmp = await QmpClient.connect(s.qmpSocket);
  await qmp.stop();
  await qmp.migrateSetCapabilities(v.capabilities);
  if (v.name === "eager") await qmp.migrateSetParameters({ "multifd-channels": 1 });
  await qmp.migrate(`file:${join(work, "state")}`);
  await waitMigration(qmp);
  await qmp.quit().catch(() => {});
  await waitForExit(pid, 10_000);
}

/** Resumes; returns load ms, first agent answer after cont, and the guest's full read. */
async function resume(work: string, v: Variant, dirtyMib: number): Promise<number[]> {
  await runOverlay(work);
  const s = spec(work, true);
  const pid = await launchQemu(
    probe.qemu.path,
    [...buildArgv(s), ...v.memory(join(work, "ram"), false)],
    { pidFile: s.pidFile! },
  );
  try {
    const launched = performance.now();
    {
      await using qmp = await QmpClient.connect(s.qmpSocket);
      await qmp.migrateSetCapabilities(v.capabilities);
      if (v.name === "eager") await qmp.migrateSetParameters({ "multifd-channels": 1 });
      await qmp.migrateIncoming(`file:${join(work, "state")}`, { exitOnError: false });
      await waitMigration(qmp);
      const loaded = performance.now();
      await qmp.cont();
      await using qga = await QgaClient.connect(s.qgaSocket, { timeoutMs: 30_000 });
      const answered = performance.now();
      const read = performance.now();
      if (dirtyMib > 0) {
        const r = await qga.exec("/bin/cat", { args: ["/dirty/ram"], captureOutput: false });
        if (r.exitCode !== 0) throw new Error("the guest could not read its RAM back");
      }
      const readMs = performance.now() - read;
      if (dirtyMib > 0) {
        // The data is what the guest wrote before the capture (not zeros, not garbage).
        const head = await qga.exec("/bin/head", { args: ["-c", "17", "/dirty/ram"] });
        const text = new TextDecoder().decode(head.stdout);
        if (text !== "0123456789abcdef\n") throw new Error(`the guest's RAM came back as ${text}`);
      }
      return [loaded - launched, answered - loaded, dirtyMib > 0 ? readMs : 0];
    }
  } finally {
    await killAndWait(pid);
  }
}

for (const dirtyMib of DIRTY_MIB) {
  for (const v of VARIANTS) {
    const work = join(dir, `${v.name}-${dirtyMib}`);
    await Deno.mkdir(work);
    await capture(work, v, dirtyMib);
    const best = [Infinity, Infinity, Infinity];
    for (let i = 0; i < 3; i++) {
      const r = await resume(work, v, dirtyMib);
      r.forEach((ms, k) => (best[k] = Math.min(best[k], ms)));
    }
    const line = `${dirtyMib} MiB | ${v.name} | load ${best[0].toFixed(0)} ms | agent after cont ${
      best[1].toFixed(0)
    } ms | guest reads its ${dirtyMib} MiB in ${best[2].toFixed(0)} ms`;
    console.log(line);
    await Deno.remove(work, { recursive: true });
  }
}
await Deno.remove(dir, { recursive: true });
