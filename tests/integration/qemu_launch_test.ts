/**
 * The QEMU command line, accepted by a real QEMU, daemonized; QEMU's own errors surface; a
 * saved state leaves QEMU ready to continue.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeIsoFile } from "../../src/iso/mod.ts";
import { QmpClient } from "../../src/protocol/mod.ts";
import { buildArgv, type VmSpec } from "../../src/qemu/argv.ts";
import { launchQemu, processExists, waitForExit } from "../../src/qemu/process.ts";
import { launch } from "../../src/vm/boot.ts";
import { saveState } from "../../src/vm/migration.ts";
import { EmuError } from "../../src/errors.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

async function withVmDir(fn: (dir: string, spec: VmSpec) => Promise<void>) {
  if (!await requireTool("qemu-img", "qemu-utils")) return;
  if (!await requireTool("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)")) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-launch-" });
  try {
    const disk = join(dir, "run.qcow2");
    const made = await new Deno.Command("qemu-img", {
      args: ["create", "-q", "-f", "qcow2", disk, "64M"],
    }).output();
    assert.ok(made.success);
    await writeIsoFile(
      [{ path: "runtime.env", data: new TextEncoder().encode("EMU_INSTANCE=test\n") }],
      join(dir, "runtime.iso"),
      { label: "EMUCFG" },
    );
    await fn(dir, {
      arch: "x86_64",
      machine: "q35",
      accel: "tcg",
      cpu: "max",
      memoryMib: 128,
      cpus: 1,
      disk,
      runtimeIso: join(dir, "runtime.iso"),
      forwards: [],
      qmpSocket: join(dir, "qmp.sock"),
      qgaSocket: join(dir, "qga.sock"),
      serialLog: join(dir, "serial.log"),
      name: "launchtest",
      pidFile: join(dir, "qemu.pid"),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "launch: real QEMU runs the full topology daemonized; QMP sees it and vmgenid",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withVmDir(async (dir, spec) => {
      const pid = await launchQemu("qemu-system-x86_64", buildArgv(spec), {
        pidFile: spec.pidFile!,
      });
      assert.ok(processExists(pid));
      const qmp = await QmpClient.connect(spec.qmpSocket);
      try {
        assert.equal((await qmp.queryStatus()).status, "running");
        assert.match(await qmp.queryVmGenerationId(), /^[0-9a-f-]{36}$/);
        const devices = await qmp.execute<{ name: string; type: string }[]>("qom-list", {
          path: "/machine/peripheral",
        });
        const ids = devices.map((d) => d.name).filter((n) => !n.startsWith("type"));
        for (const id of ["vd0", "vd1", "nic0", "vser0", "vmgen0", "rng0dev"]) {
          assert.ok(ids.includes(id), `${id} in ${ids}`);
        }
        const gone = qmp.waitForEvent("SHUTDOWN");
        await qmp.quit();
        await gone;
      } finally {
        await qmp.close();
      }
      await waitForExit(pid, 1000);
      assert.equal(processExists(pid), false);
      assert.ok((await Deno.stat(join(dir, "serial.log"))).isFile);
    }),
);

Deno.test(
  "launch: with -incoming defer QEMU waits in inmigrate",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withVmDir(async (_dir, spec) => {
      const pid = await launchQemu("qemu-system-x86_64", buildArgv({ ...spec, incoming: true }), {
        pidFile: spec.pidFile!,
      });
      const qmp = await QmpClient.connect(spec.qmpSocket);
      try {
        assert.deepEqual(await qmp.queryStatus(), { status: "inmigrate", running: false });
        await qmp.quit();
      } finally {
        await qmp.close();
      }
      await waitForExit(pid, 1000);
    }),
);

Deno.test(
  "launch: a QEMU configuration error comes back with QEMU's own message, no process left",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withVmDir(async (dir, spec) => {
      await assert.rejects(
        launchQemu("qemu-system-x86_64", buildArgv({ ...spec, disk: join(dir, "missing.qcow2") }), {
          pidFile: spec.pidFile!,
        }),
        {
          code: "qemu_failed",
          message: /^Cannot start QEMU: .*missing\.qcow2.*No such file or directory/,
        },
      );
      await assert.rejects(Deno.stat(spec.pidFile!), Deno.errors.NotFound);
    }),
);

Deno.test(
  "launch: a host port taken as QEMU starts → port_in_use naming it; no socket or pid file left",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withVmDir(async (dir, spec) => {
      // Taken after emu's own check would have passed: QEMU meets it setting up the forward.
      using held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (held.addr as Deno.NetAddr).port;
      const err = await launch("qemu-system-x86_64", {
        ...spec,
        forwards: [{ name: "http", host: port, guest: 8080 }],
      }).catch((e) => e);
      assert.ok(err instanceof EmuError, String(err));
      assert.equal(err.code, "port_in_use");
      assert.equal(
        err.message,
        `Cannot forward port 127.0.0.1:${port}: another process took it while QEMU was starting`,
      );
      const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
      for (const f of ["qmp.sock", "qga.sock", "qemu.pid"]) {
        assert.ok(!left.includes(f), `${f} left: ${left}`);
      }
    }),
);

Deno.test(
  "saveState: when it returns QEMU has left finish-migrate, so cont is accepted at once (5 saves)",
  needs(TOOLS.qemu, TOOLS.qemuImg),
  () =>
    withVmDir(async (dir, spec) => {
      const pid = await launchQemu("qemu-system-x86_64", buildArgv(spec), {
        pidFile: spec.pidFile!,
      });
      const qmp = await QmpClient.connect(spec.qmpSocket);
      try {
        for (let i = 0; i < 5; i++) {
          await saveState(qmp, join(dir, `state-${i}.raw`), { channels: 1 });
          assert.deepEqual(await qmp.queryStatus(), { status: "postmigrate", running: false });
          // QEMU refuses `cont` while in finish-migrate ("Migration is not finalized yet").
          await qmp.cont();
          assert.deepEqual(await qmp.queryStatus(), { status: "running", running: true });
        }
        await qmp.quit();
      } finally {
        await qmp.close();
      }
      await waitForExit(pid, 1000);
    }),
);
