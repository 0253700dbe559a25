import assert from "node:assert/strict";
import { generateSecret, generateSecrets, keyValueLines } from "../../../src/vm/secrets.ts";

Deno.test("secrets: hexN is N random bytes as 2N hex digits, different every time", () => {
  const a = generateSecret("hex32");
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(generateSecret("hex32"), a);
  assert.match(generateSecret("hex8"), /^[0-9a-f]{16}$/);
});

Deno.test("secrets: base64urlN is unpadded base64url of N bytes", () => {
  const s = generateSecret("base64url32");
  assert.match(s, /^[A-Za-z0-9_-]{43}$/);
  assert.match(generateSecret("base64url9"), /^[A-Za-z0-9_-]{12}$/);
});

Deno.test("secrets: one value per profile secret, as KEY=VALUE lines", () => {
  const values = generateSecrets({ API_SECRET: "hex16", TOKEN: "base64url12" });
  assert.deepEqual(Object.keys(values), ["API_SECRET", "TOKEN"]);
  assert.equal(keyValueLines({ A: "1", B: "two" }), "A=1\nB=two\n");
  assert.throws(() => generateSecret("uuid" as never), RangeError);
});
