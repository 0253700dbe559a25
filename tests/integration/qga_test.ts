/** The guest-agent client against a real qemu-ga running on the host. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CommandError } from "../../src/errors.ts";
import { QgaClient } from "../../src/protocol/mod.ts";
import { type Peer, startQemuGa } from "../_helpers/peers.ts";
import { needs, TOOLS } from "../_helpers/require.ts";

async function withAgent(
  fn: (qga: QgaClient, agent: Peer, dir: string, log: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "emu-qga-" });
  const agent = await startQemuGa(dir);
  if (agent === null) return;
  const log: string[] = [];
  try {
    const qga = await QgaClient.connect(agent.socket, {
      timeoutMs: 10_000,
      log: (t) => log.push(t),
    });
    try {
      await fn(qga, agent, dir, log);
    } finally {
      await qga.close();
    }
  } finally {
    await agent.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "qga: connect syncs, then ping answers",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga) => {
      await qga.ping();
      await qga.sync();
      await qga.ping();
    }),
);

Deno.test(
  "qga: sync recovers after another client left a stale partial request",
  needs(TOOLS.qemuGa),
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "emu-qga-" });
    const agent = await startQemuGa(dir);
    if (agent === null) return;
    try {
      // A client that died mid-request: half a command, then gone.
      const first = await QgaClient.connect(agent.socket);
      await first.close();
      const raw = await Deno.connect({ transport: "unix", path: agent.socket });
      await raw.write(
        new TextEncoder().encode('{"execute": "guest-exec", "arguments": {"path": "/bin/tr'),
      );
      raw.close();
      const qga = await QgaClient.connect(agent.socket, { timeoutMs: 10_000 });
      await qga.ping();
      const r = await qga.exec("/bin/echo", { args: ["fresh"] });
      assert.equal(new TextDecoder().decode(r.stdout), "fresh\n");
      await qga.close();
    } finally {
      await agent.kill();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "qga: a cancelled call's late reply is dropped and the next call resyncs",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga, _agent, _dir, log) => {
      // The request is already on its way when the call is cancelled; its reply comes late.
      const controller = new AbortController();
      const cancelled = qga.ping({ signal: controller.signal });
      controller.abort();
      await assert.rejects(cancelled, { code: "aborted" });
      await qga.ping();
      const r = await qga.exec("/bin/echo", { args: ["after"] });
      assert.equal(new TextDecoder().decode(r.stdout), "after\n");
      assert.ok(log.some((l) => /dropped a reply to unknown id/.test(l)), log.join("\n"));
    }),
);

Deno.test(
  "qga: guest-exec round-trips 1 MiB of random bytes through cat",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga) => {
      const input = new Uint8Array(1024 * 1024);
      for (let i = 0; i < input.length; i += 65536) {
        crypto.getRandomValues(input.subarray(i, i + 65536));
      }
      const r = await qga.exec("/bin/cat", { input });
      assert.equal(r.exitCode, 0);
      assert.equal(r.signal, null);
      assert.equal(r.stdout.length, input.length);
      assert.ok(r.stdout.every((b, i) => b === input[i]), "stdout equals stdin");
      assert.equal(r.stdoutTruncated, false);
    }),
);

Deno.test(
  "qga: exit code, stderr, arguments and environment come through",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga) => {
      const r = await qga.exec("/bin/sh", {
        args: ["-c", 'echo "$GREETING" >&2; exit 3'],
        env: ["GREETING=hello"],
      });
      assert.equal(r.exitCode, 3);
      assert.equal(new TextDecoder().decode(r.stderr), "hello\n");
      assert.equal(r.stdout.length, 0);
      const killed = await qga.exec("/bin/sh", { args: ["-c", "kill -9 $$"] });
      assert.equal(killed.signal, 9);
      await assert.rejects(
        qga.exec("/nonexistent/program"),
        (err: unknown) => err instanceof CommandError && err.code === "qga_command_failed",
      );
    }),
);

Deno.test(
  "qga: guest-set-time error path is a CommandError",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga) => {
      // Never set a valid time here: this agent runs on the host, as root in CI.
      await assert.rejects(qga.setTime(1n), (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.command, "guest-set-time");
        assert.equal(err.errorClass, "GenericError");
        assert.match(
          err.message,
          /^Cannot run guest-set-time: the guest agent answered GenericError: /,
        );
        return true;
      });
    }),
);

Deno.test(
  "qga: file write then read back",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga, _agent, dir) => {
      const path = join(dir, "guest-file");
      const data = new Uint8Array(100_000);
      for (let i = 0; i < data.length; i += 65536) {
        crypto.getRandomValues(data.subarray(i, i + 65536));
      }
      const w = await qga.fileOpen(path, "w");
      assert.equal(await qga.fileWrite(w, data), data.length);
      await qga.fileClose(w);
      assert.deepEqual(await Deno.readFile(path), data);
      const r = await qga.fileOpen(path, "r");
      const chunks: Uint8Array[] = [];
      while (true) {
        const { data: chunk, eof } = await qga.fileRead(r, 40_000);
        chunks.push(chunk);
        if (eof) break;
      }
      await qga.fileClose(r);
      const read = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      chunks.reduce((at, c) => (read.set(c, at), at + c.length), 0);
      assert.deepEqual(read, data);
    }),
);

Deno.test(
  "qga: agent killed mid-exec rejects the pending call within its timeout",
  needs(TOOLS.qemuGa),
  () =>
    withAgent(async (qga, agent) => {
      const started = Date.now();
      const running = assert.rejects(qga.exec("/bin/sleep", { args: ["30"], timeoutMs: 20_000 }), {
        code: "protocol_closed",
      });
      await new Promise((r) => setTimeout(r, 300));
      await agent.kill();
      await running;
      await assert.rejects(qga.ping(), { code: "protocol_closed" });
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    }),
);

Deno.test("qga: a reply meant for an earlier client of the port (an emu killed mid-call) is not taken for this client's sync", async () => {
  // A virtio-serial port outlives host connections: qemu-ga's answer to a client that
  // was killed reaches the next one. Its id was that client's first call's: 1.
  const dir = await Deno.makeTempDir({ prefix: "emu-qga-stale-" });
  const path = join(dir, "qga.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const peer = (async () => {
    const conn = await listener.accept();
    await conn.write(
      new Uint8Array([0xff, ...new TextEncoder().encode('{"return": 900722426, "id": 1}\n')]),
    );
    let text = "";
    const buffer = new Uint8Array(4096);
    while (!text.includes("\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n).filter((b) => b !== 0xff));
    }
    const request = JSON.parse(text.trim());
    assert.equal(request.execute, "guest-sync-delimited");
    await conn.write(new TextEncoder().encode(
      `${JSON.stringify({ return: request.arguments.id, id: request.id })}\n`,
    ));
    return conn;
  })();
  const log: string[] = [];
  try {
    const qga = await QgaClient.connect(path, { timeoutMs: 5000, log: (t) => log.push(t) });
    await qga.close();
    assert.ok(log.some((l) => /dropped a reply to unknown id 1\b/.test(l)), log.join("\n"));
  } finally {
    (await peer).close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
