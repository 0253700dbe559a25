/**
 * The fast fixture guest, built from Debian packages (cached), booted by real QEMU under
 * TCG with emu's own command line: the guest kernel reads emu's EMUCFG ISO, the
 * real qemu-ga answers inside it, the health check answers over a host port forward,
 * the rotate command takes secrets over guest-exec stdin, and the ACPI power button
 * (QMP system_powerdown) powers it off cleanly.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureFastFixture, FAST_APPEND } from "../../fixtures/fast.ts";
import { writeIsoFile } from "../../src/iso/mod.ts";
import { QgaClient, QmpClient } from "../../src/protocol/mod.ts";
import { buildArgv, type VmSpec } from "../../src/qemu/argv.ts";
import { launchQemu, processExists } from "../../src/qemu/process.ts";
import { freePort, requireVmTools } from "../_helpers/vm_env.ts";
import { needs, TOOLS, VM_TOOLS } from "../_helpers/require.ts";

async function health(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/cgi-bin/health`);
  return { status: r.status, body: await r.text() };
}

Deno.test(
  "fast fixture: boots under TCG to healthy, reads EMUCFG, rotates, powers off gracefully",
  needs(TOOLS.qemu, TOOLS.qemuImg, ...VM_TOOLS),
  async () => {
    if (!await requireVmTools()) return;
    const fixture = await ensureFastFixture({ log: () => {} });
    const image = JSON.parse(await Deno.readTextFile(join(fixture.dir, "image.json")));
    const dir = await Deno.makeTempDir({ prefix: "emu-fixture-" });
    let pid = 0;
    try {
      const overlay = await new Deno.Command("qemu-img", {
        args: [
          "create",
          "-q",
          "-f",
          "qcow2",
          "-b",
          join(fixture.dir, image.disk),
          "-F",
          "qcow2",
          join(dir, "run.qcow2"),
        ],
      }).output();
      assert.ok(overlay.success);
      await writeIsoFile(
        [{ path: "runtime.env", data: new TextEncoder().encode("EMU_INSTANCE=fixture-test\n") }],
        join(dir, "runtime.iso"),
        { label: "EMUCFG" },
      );
      const port = freePort();
      const spec: VmSpec = {
        arch: "x86_64",
        machine: "q35",
        accel: "tcg",
        cpu: "max",
        memoryMib: 256,
        cpus: 1,
        disk: join(dir, "run.qcow2"),
        runtimeIso: join(dir, "runtime.iso"),
        forwards: [{ name: "http", host: port, guest: 8080 }],
        qmpSocket: join(dir, "qmp.sock"),
        qgaSocket: join(dir, "qga.sock"),
        serialLog: join(dir, "serial.log"),
        pidFile: join(dir, "qemu.pid"),
        kernel: {
          path: join(fixture.dir, image.boot.kernel),
          initrd: join(fixture.dir, image.boot.initrd),
          append: FAST_APPEND,
        },
      };
      const started = performance.now();
      pid = await launchQemu("qemu-system-x86_64", buildArgv(spec), { pidFile: spec.pidFile! });

      const qga = await QgaClient.connect(spec.qgaSocket, { timeoutMs: 60_000 });
      let first: { status: number; body: string } | null = null;
      for (let i = 0; i < 600 && first?.status !== 200; i++) {
        first = await health(port).catch(() => null);
        if (first?.status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      const healthyMs = performance.now() - started;
      console.log(
        `fast fixture: launch to healthy in ${(healthyMs / 1000).toFixed(2)} s under TCG`,
      );
      assert.equal(first?.status, 200);
      // The guest kernel mounted emu's ISO (label EMUCFG) and read runtime.env from it.
      assert.match(first!.body, /^ok\ninstance=fixture-test\napi_secret_sha256=[0-9a-f]{64}\n$/);
      const serial = await Deno.readTextFile(spec.serialLog);
      assert.match(serial, /EMU_CONFIG_READ \/dev\/vd[a-z]\r?\n/);
      assert.match(serial, /EMU_READY/);

      const secret = "b".repeat(64);
      const rotated = await qga.exec("/usr/local/bin/emu-rotate", {
        input: new TextEncoder().encode(`API_SECRET=${secret}\nEMU_API_PORT=${port}\n`),
      });
      assert.equal(rotated.exitCode, 0, new TextDecoder().decode(rotated.stderr));
      const expected = Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret))),
      )
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal((await health(port)).body.split("\n")[2], `api_secret_sha256=${expected}`);
      const refused = await qga.exec("/usr/local/bin/emu-rotate", {
        input: new TextEncoder().encode("garbage\n"),
      });
      assert.equal(refused.exitCode, 2);
      await qga.close();

      const qmp = await QmpClient.connect(spec.qmpSocket);
      try {
        const shutdown = qmp.waitForEvent("SHUTDOWN", undefined, { timeoutMs: 30_000 });
        await qmp.systemPowerdown();
        assert.deepEqual((await shutdown).data, { guest: true, reason: "guest-shutdown" });
      } finally {
        await qmp.close();
      }
      for (let i = 0; i < 100 && processExists(pid); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(processExists(pid), false, "QEMU exited after the guest powered off");
    } finally {
      if (pid && processExists(pid)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
);
