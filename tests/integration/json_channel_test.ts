/**
 * The JSON channel against a scripted peer on a real unix socket: the adversarial cases
 * real QEMU does not produce on demand (events between command and reply, unknown ids,
 * non-JSON lines, oversized messages, silence, a peer that vanishes mid-call).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { JsonChannel, type JsonChannelOptions } from "../../src/protocol/json_channel.ts";
import { MessageDecoder } from "../../src/protocol/_framing.ts";

interface Script {
  /** Next request the client sent. */
  request(): Promise<Record<string, unknown>>;
  send(text: string): Promise<void>;
  close(): void;
}

async function withChannel(
  options: Partial<JsonChannelOptions>,
  fn: (channel: JsonChannel, peer: Script, log: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "emu-chan-" });
  const path = join(dir, "peer.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const log: string[] = [];
  try {
    const [server, client] = await Promise.all([
      listener.accept(),
      Deno.connect({ transport: "unix", path }),
    ]);
    const channel = new JsonChannel(client, {
      peer: "QMP",
      invalidLines: "fail",
      log: (t) => log.push(t),
      ...options,
    });
    const decoder = new MessageDecoder();
    const queue: Record<string, unknown>[] = [];
    const buffer = new Uint8Array(65536);
    let serverOpen = true;
    const peer: Script = {
      async request() {
        while (queue.length === 0) {
          const n = await server.read(buffer);
          if (n === null) throw new Error("client closed");
          for (const item of decoder.push(buffer.slice(0, n))) {
            if (item.kind === "message") queue.push(item.value);
          }
        }
        return queue.shift()!;
      },
      async send(text) {
        await server.write(new TextEncoder().encode(text));
      },
      close() {
        if (serverOpen) server.close();
        serverOpen = false;
      },
    };
    try {
      await fn(channel, peer, log);
    } finally {
      await channel.close();
      peer.close();
    }
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("channel: an event between command and reply reaches listeners; the reply resolves the call", () =>
  withChannel({}, async (channel, peer) => {
    const stopped = channel.waitForEvent("STOP");
    const call = channel.call("stop");
    const req = await peer.request();
    assert.deepEqual(req, { execute: "stop", id: 1 });
    await peer.send(
      '{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n{"return": {}, "id": 1}\r\n',
    );
    assert.deepEqual(await call, {});
    assert.deepEqual(await stopped, {
      event: "STOP",
      data: {},
      timestamp: { seconds: 1, microseconds: 0 },
    });
  }));

Deno.test("channel: replies are matched by id, whatever their order", () =>
  withChannel({}, async (channel, peer) => {
    const a = channel.call("a");
    const b = channel.call("b", { x: 1 });
    assert.deepEqual([await peer.request(), await peer.request()], [{ execute: "a", id: 1 }, {
      execute: "b",
      arguments: { x: 1 },
      id: 2,
    }]);
    await peer.send('{"return": "for b", "id": 2}\n{"return": "for a", "id": 1}\n');
    assert.deepEqual([await a, await b], ["for a", "for b"]);
  }));

Deno.test("channel: a reply to an unknown id is logged and dropped", () =>
  withChannel({}, async (channel, peer, log) => {
    const call = channel.call("query-status");
    await peer.request();
    await peer.send('{"return": "stale", "id": 99}\n{"return": "fresh", "id": 1}\n');
    assert.equal(await call, "fresh");
    assert.deepEqual(log, ["QMP: dropped a reply to unknown id 99"]);
  }));

Deno.test("channel: a non-JSON line fails the QMP channel with a clear error", () =>
  withChannel({}, async (channel, peer) => {
    const call = channel.call("query-status");
    await peer.request();
    await peer.send("this is not json {\n");
    await assert.rejects(call, {
      code: "protocol",
      message: /^Cannot read from QEMU \(QMP\): it sent a line that is not JSON \(.*\): \{$/,
    });
    await assert.rejects(channel.call("again"), { code: "protocol" });
  }));

Deno.test("channel: a non-JSON line is skipped on a QGA channel", () =>
  withChannel({ peer: "QGA", invalidLines: "skip" }, async (channel, peer, log) => {
    const call = channel.call("guest-ping");
    await peer.request();
    await peer.send('{broken\n{"return": {}, "id": 1}\n');
    assert.deepEqual(await call, {});
    assert.deepEqual(log, ["QGA: skipped a line that is not JSON: {broken"]);
  }));

Deno.test("channel: an oversized message fails the channel, no hang", () =>
  withChannel({ maxMessageBytes: 1024 }, async (channel, peer) => {
    const call = channel.call("big");
    await peer.request();
    await peer.send(`{"return": "${"x".repeat(5000)}`);
    await assert.rejects(call, {
      code: "protocol",
      message: "Cannot read from QEMU (QMP): a message exceeded 1024 bytes",
    });
  }));

Deno.test("channel: a silent peer times out the call with the command named", () =>
  withChannel({}, async (channel, peer) => {
    const call = channel.call("query-migrate", undefined, { timeoutMs: 50 });
    await peer.request();
    await assert.rejects(call, {
      code: "protocol_timeout",
      message: "Cannot run query-migrate: QEMU (QMP) did not answer within 50 ms",
    });
    await assert.rejects(channel.waitForEvent("MIGRATION", undefined, { timeoutMs: 30 }), {
      code: "protocol_timeout",
      message: "Cannot see event MIGRATION: it did not come within 30 ms",
    });
  }));

Deno.test("channel: an abort signal cancels calls and waits", () =>
  withChannel({}, async (channel) => {
    const controller = new AbortController();
    const call = channel.call("stop", undefined, { signal: controller.signal });
    const wait = channel.waitForEvent("STOP", undefined, { signal: controller.signal });
    controller.abort(new Error("user pressed Ctrl-C"));
    await assert.rejects(call, { code: "aborted", message: "Cannot run stop: it was cancelled" });
    await assert.rejects(wait, { code: "aborted" });
    await assert.rejects(channel.call("x", undefined, { signal: controller.signal }), {
      code: "aborted",
    });
  }));

Deno.test("channel: the peer vanishing mid-call rejects every pending promise at once", () =>
  withChannel({}, async (channel, peer) => {
    const started = Date.now();
    const calls = [
      channel.call("a", undefined, { timeoutMs: 20_000 }),
      channel.call("b", undefined, { timeoutMs: 20_000 }),
    ];
    const wait = channel.waitForEvent("SHUTDOWN", undefined, { timeoutMs: 20_000 });
    const greeting = channel.nextUnsolicited({ what: "the greeting", timeoutMs: 20_000 });
    await peer.request();
    peer.close();
    for (const p of [...calls, wait, greeting]) {
      await assert.rejects(p, {
        code: "protocol_closed",
        message: "Cannot use the connection to QEMU (QMP): the peer closed it",
      });
    }
    assert.ok(Date.now() - started < 2000);
  }));

Deno.test("channel: close is idempotent and rejects later calls", () =>
  withChannel({}, async (channel) => {
    const pending = channel.call("never", undefined, { timeoutMs: 20_000 });
    const rejected = assert.rejects(pending, {
      code: "protocol_closed",
      message: "Cannot use the connection to QEMU (QMP): it was closed",
    });
    await channel.close();
    await channel.close();
    await rejected;
    await assert.rejects(channel.call("after"), { code: "protocol_closed" });
    await assert.rejects(channel.waitForEvent("STOP"), { code: "protocol_closed" });
  }));

Deno.test("channel: messages without an id wait for nextUnsolicited, even if early", () =>
  withChannel({}, async (channel, peer) => {
    await peer.send('{"QMP": {"version": {}}}\r\n');
    assert.deepEqual(await channel.nextUnsolicited({ what: "greeting" }), { QMP: { version: {} } });
    const later = channel.nextUnsolicited({ what: "second" });
    await peer.send('{"return": 5}\n');
    assert.deepEqual(await later, { return: 5 });
  }));
