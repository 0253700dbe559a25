import assert from "node:assert/strict";
import { MarkerReader, parseMarkerLine } from "../../../src/image/markers.ts";

Deno.test("markers: steps, done and failed lines; everything else is ignored", () => {
  assert.deepEqual(parseMarkerLine("EMU_PROVISION_STEP configuring PostgreSQL\r"), {
    kind: "step",
    text: "configuring PostgreSQL",
  });
  assert.deepEqual(parseMarkerLine("EMU_PROVISION_DONE"), { kind: "done" });
  assert.deepEqual(parseMarkerLine("[  12.3] cloud-init[301]: EMU_PROVISION_FAILED disk full"), {
    kind: "failed",
    reason: "disk full",
  });
  assert.deepEqual(parseMarkerLine("EMU_PROVISION_FAILED"), {
    kind: "failed",
    reason: "no reason given",
  });
  // Colour codes that consoles add do not hide a marker.
  assert.deepEqual(parseMarkerLine("\x1b[0;32mEMU_PROVISION_DONE\x1b[0m"), { kind: "done" });
  assert.equal(parseMarkerLine("EMU_PROVISION_STEP"), null);
  assert.equal(parseMarkerLine("EMU_PROVISION_DONEX"), null);
  assert.equal(parseMarkerLine("Starting PostgreSQL..."), null);
});

Deno.test("markers: a marker split across chunks is read once its line is complete", () => {
  const reader = new MarkerReader();
  assert.deepEqual(reader.push("boot\nEMU_PROV"), []);
  assert.deepEqual(reader.push("ISION_STEP one\r\nEMU_PROVISION_DO"), [
    { kind: "step", text: "one" },
  ]);
  assert.deepEqual(reader.push("NE"), []);
  assert.deepEqual(reader.push("\n"), [{ kind: "done" }]);
});

Deno.test("markers: an endless line does not grow memory without bound", () => {
  const reader = new MarkerReader();
  for (let i = 0; i < 100; i++) reader.push("x".repeat(10_000));
  assert.deepEqual(reader.push("\nEMU_PROVISION_DONE\n"), [{ kind: "done" }]);
});
