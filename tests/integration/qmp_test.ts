/** The QMP client against a real QEMU (`-machine none`). */
import assert from "node:assert/strict";
import { CommandError } from "../../src/errors.ts";
import { QmpClient } from "../../src/protocol/mod.ts";
import { startQemuNone } from "../_helpers/peers.ts";
import { needs, TOOLS } from "../_helpers/require.ts";

async function withQemu(
  fn: (qmp: QmpClient, kill: () => Promise<void>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "emu-qmp-" });
  const qemu = await startQemuNone(dir);
  if (qemu === null) return;
  try {
    const qmp = await QmpClient.connect(qemu.socket, { timeoutMs: 10_000 });
    try {
      await fn(qmp, qemu.kill);
    } finally {
      await qmp.close();
    }
  } finally {
    await qemu.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "qmp: greeting gives the QEMU version; capabilities are negotiated",
  needs(TOOLS.qemu),
  () =>
    withQemu(async (qmp) => {
      assert.ok(qmp.version.major >= 9, `QEMU ${qmp.versionString} (mapped-ram needs 9.0+)`);
      assert.match(qmp.versionString, /^\d+\.\d+\.\d+$/);
      // A command outside negotiation mode works only after qmp_capabilities.
      assert.deepEqual(await qmp.queryStatus(), { status: "running", running: true });
    }),
);

Deno.test(
  "qmp: stop and cont emit STOP and RESUME and change query-status",
  needs(TOOLS.qemu),
  () =>
    withQemu(async (qmp) => {
      const stopped = qmp.waitForEvent("STOP");
      await qmp.stop();
      await stopped;
      assert.deepEqual(await qmp.queryStatus(), { status: "paused", running: false });
      const resumed = qmp.waitForEvent("RESUME", undefined, { timeoutMs: 5000 });
      await qmp.cont();
      assert.equal((await resumed).event, "RESUME");
      assert.equal((await qmp.queryStatus()).running, true);
    }),
);

Deno.test(
  "qmp: an error reply is a CommandError with the command and class",
  needs(TOOLS.qemu),
  () =>
    withQemu(async (qmp) => {
      await assert.rejects(qmp.execute("no-such-command"), (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.code, "qmp_command_failed");
        assert.equal(err.command, "no-such-command");
        assert.equal(err.errorClass, "CommandNotFound");
        assert.equal(
          err.message,
          "Cannot run no-such-command: QEMU answered CommandNotFound: The command no-such-command has not been found",
        );
        return true;
      });
      await assert.rejects(qmp.queryVmGenerationId(), {
        errorClass: "GenericError",
        message: /VM Generation ID device not found/,
      });
      // The connection is still good after errors.
      assert.equal((await qmp.queryStatus()).status, "running");
    }),
);

Deno.test(
  "qmp: migration helpers reach QEMU (capabilities, parameters, query-migrate)",
  needs(TOOLS.qemu),
  () =>
    withQemu(async (qmp) => {
      await qmp.migrateSetCapabilities({ "mapped-ram": true, multifd: true, events: true });
      await qmp.migrateSetParameters({ "multifd-channels": 2, "max-bandwidth": 0 });
      const caps = await qmp.execute<{ capability: string; state: boolean }[]>(
        "query-migrate-capabilities",
      );
      const on = Object.fromEntries(caps.map((c) => [c.capability, c.state]));
      assert.deepEqual([on["mapped-ram"], on.multifd, on.events], [true, true, true]);
      const params = await qmp.execute<Record<string, unknown>>("query-migrate-parameters");
      assert.equal(params["multifd-channels"], 2);
      assert.deepEqual(await qmp.queryMigrate(), {});
      await assert.rejects(qmp.migrateIncoming("file:/nonexistent"), {
        errorClass: "GenericError",
      });
    }),
);

Deno.test(
  "qmp: quit emits SHUTDOWN, then the closed connection rejects calls",
  needs(TOOLS.qemu),
  () =>
    withQemu(async (qmp) => {
      const shutdown = qmp.waitForEvent("SHUTDOWN");
      await qmp.quit();
      assert.deepEqual((await shutdown).data, { guest: false, reason: "host-qmp-quit" });
      await assert.rejects(qmp.queryStatus({ timeoutMs: 5000 }), { code: "protocol_closed" });
      assert.equal(qmp.failure?.code, "protocol_closed");
    }),
);

Deno.test(
  "qmp: QEMU killed mid-wait rejects every pending promise promptly",
  needs(TOOLS.qemu),
  () =>
    withQemu(async (qmp, kill) => {
      const started = Date.now();
      // Handlers are attached before the kill: the rejections come while kill() is awaited.
      const waiting = assert.rejects(
        qmp.waitForEvent("MIGRATION", undefined, { timeoutMs: 20_000 }),
        {
          code: "protocol_closed",
        },
      );
      await kill();
      await waiting;
      await assert.rejects(qmp.queryStatus(), { code: "protocol_closed" });
      assert.ok(Date.now() - started < 5000, "rejected long before the 20 s timeout");
    }),
);

Deno.test(
  "qmp: connect waits for a socket that appears late, and gives up with a clear error",
  needs(TOOLS.qemu),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "emu-qmp-" });
    try {
      await assert.rejects(QmpClient.connect(`${dir}/never.sock`, { timeoutMs: 300 }), {
        code: "socket_unavailable",
        message: `Cannot connect to ${dir}/never.sock: it does not exist after 0.3 s`,
      });
      const connecting = QmpClient.connect(`${dir}/qmp.sock`, { timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 200));
      const qemu = await startQemuNone(dir);
      if (qemu === null) return void (await connecting.then((q) => q.close(), () => {}));
      try {
        const qmp = await connecting;
        assert.equal((await qmp.queryStatus()).running, true);
        await qmp.close();
        await qmp.close();
      } finally {
        await qemu.kill();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
