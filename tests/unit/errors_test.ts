import assert from "node:assert/strict";
import { EmuError, explainDiskFull } from "../../src/errors.ts";

Deno.test("explainDiskFull: ENOSPC from any layer becomes disk_full with the same message", () => {
  const os = Object.assign(new Error("No space left on device (os error 28): write '/h/x'"), {
    code: "ENOSPC",
  });
  const cases: [unknown, string][] = [
    [os, "Cannot write: No space left on device (os error 28): write '/h/x'"],
    [
      new EmuError(
        "snapshot_failed",
        "Cannot save the VM state: migration failed: No space left on device",
      ),
      "Cannot save the VM state: migration failed: No space left on device",
    ],
    [
      new EmuError("qemu_failed", "Cannot create the overlay: qemu-img failed", { cause: os }),
      "Cannot create the overlay: qemu-img failed",
    ],
  ];
  for (const [err, message] of cases) {
    const shown = explainDiskFull(err);
    assert.ok(shown instanceof EmuError);
    assert.equal(shown.code, "disk_full");
    assert.equal(shown.message, message);
    assert.match(shown.hint!, /free some space/);
    assert.equal(shown.exitCode, 1);
  }
});

Deno.test("explainDiskFull: other errors are returned as they are", () => {
  const errs = [
    new EmuError("io", "Cannot read /x: permission denied"),
    new Error("boom"),
    "a string",
    new EmuError("disk_full", "Cannot write: already explained"),
  ];
  for (const err of errs) assert.equal(explainDiskFull(err), err);
});
