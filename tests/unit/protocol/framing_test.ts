import assert from "node:assert/strict";
import { type Decoded, MessageDecoder } from "../../../src/protocol/_framing.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
};

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}';
const STREAM = cat(
  enc(`${GREETING}\r\n`),
  enc('{"return": {}, "id": 1}\r\n'),
  enc('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n'),
  enc('{"return": {"status": "paused", "running": false}, "id": 2}\r\n'),
  new Uint8Array([0xff]),
  enc('{"return": 42}\n'),
  enc('{"return": {"text": "é ✓ 😀"}, "id": 3}\n'),
);

function messages(items: Decoded[]): unknown[] {
  return items.map((i) => i.kind === "message" ? i.value : i);
}

const EXPECTED = messages(new MessageDecoder().push(STREAM));

Deno.test("decoder: the whole stream in one chunk gives every message in order", () => {
  assert.equal(EXPECTED.length, 6);
  assert.deepEqual(EXPECTED[2], { timestamp: { seconds: 1, microseconds: 2 }, event: "STOP" });
  assert.deepEqual(EXPECTED[4], { return: 42 });
  assert.deepEqual(EXPECTED[5], { return: { text: "é ✓ 😀" }, id: 3 });
});

Deno.test("decoder: the stream split at every position gives the same messages", () => {
  for (let i = 0; i <= STREAM.length; i++) {
    const d = new MessageDecoder();
    const got = [...d.push(STREAM.subarray(0, i)), ...d.push(STREAM.subarray(i))];
    assert.deepEqual(messages(got), EXPECTED, `split at ${i}`);
  }
});

Deno.test("decoder: split at every pair of positions (three chunks)", () => {
  for (let i = 0; i < STREAM.length; i += 7) {
    for (let j = i; j <= STREAM.length; j += 5) {
      const d = new MessageDecoder();
      const got = [
        ...d.push(STREAM.subarray(0, i)),
        ...d.push(STREAM.subarray(i, j)),
        ...d.push(STREAM.subarray(j)),
      ];
      assert.deepEqual(messages(got), EXPECTED, `split at ${i}, ${j}`);
    }
  }
});

Deno.test("decoder: one byte at a time, including inside multi-byte UTF-8", () => {
  const d = new MessageDecoder();
  const got: Decoded[] = [];
  for (const b of STREAM) got.push(...d.push(new Uint8Array([b])));
  assert.deepEqual(messages(got), EXPECTED);
});

Deno.test("decoder: 0xFF prefixes, CR and blank lines are framing, not garbage", () => {
  const d = new MessageDecoder();
  assert.deepEqual(d.push(enc("\r\n\n")), []);
  assert.deepEqual(d.push(cat(new Uint8Array([0xff, 0xff]), enc('{"return": 1}\n'))), [{
    kind: "message",
    value: { return: 1 },
  }]);
});

Deno.test("decoder: garbage before the greeting is skipped and counted", () => {
  const d = new MessageDecoder();
  assert.deepEqual(d.push(enc(`boot noise\nxx${GREETING}\r\n`)), [
    { kind: "skipped", bytes: 10 },
    { kind: "skipped", bytes: 2 },
    { kind: "message", value: JSON.parse(GREETING) },
  ]);
});

Deno.test("decoder: a line that is not a JSON object is reported, and decoding goes on", () => {
  const d = new MessageDecoder();
  const got = d.push(enc('{"return": \n[1, 2]\n{"return": 3}\n'));
  assert.equal(got.length, 3);
  assert.equal(got[0].kind, "invalid");
  assert.deepEqual(got[1], { kind: "skipped", bytes: 6 }, "no object at all: skipped whole");
  assert.deepEqual(got[2], { kind: "message", value: { return: 3 } });
  assert.deepEqual(new MessageDecoder().push(enc('{"a": 1} trailing\n'))[0].kind, "invalid");
});

Deno.test("decoder: an oversized message is reported once and dropped up to its end", () => {
  const d = new MessageDecoder(100);
  const got = [
    ...d.push(enc(`{"return": "${"x".repeat(80)}`)),
    ...d.push(enc(`${"y".repeat(500)}"}`)),
    ...d.push(enc('\n{"return": "ok"}\n')),
  ];
  assert.equal(got.length, 2);
  assert.equal(got[0].kind, "oversized");
  assert.deepEqual(got[1], { kind: "message", value: { return: "ok" } });
  assert.equal(d.maxBytes, 100);
});
