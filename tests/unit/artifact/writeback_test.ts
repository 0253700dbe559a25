import assert from "node:assert/strict";
import { join } from "node:path";
import { Writeback } from "../../../src/artifact/writeback.ts";

/** A file whose flushes are counted and finish when the test says. */
function heldFile() {
  const flushes: PromiseWithResolvers<void>[] = [];
  return {
    flushes,
    file: {
      syncData(): Promise<void> {
        const flush = Promise.withResolvers<void>();
        flushes.push(flush);
        return flush.promise;
      },
    },
  };
}

Deno.test("writeback: a flush starts every N bytes, never two at once", async () => {
  const { file, flushes } = heldFile();
  const writeback = new Writeback(file, 100);
  writeback.wrote(99);
  assert.equal(flushes.length, 0);
  writeback.wrote(1);
  assert.equal(flushes.length, 1);
  writeback.wrote(500); // due again, but the first still runs
  assert.equal(flushes.length, 1);
  flushes[0].resolve();
  await writeback.settle();
  writeback.wrote(1); // 501 since the last start: due
  assert.equal(flushes.length, 2);
  flushes[1].resolve();
  await writeback.settle();
});

Deno.test("writeback: a failed background flush is thrown by settle, not lost", async () => {
  const { file, flushes } = heldFile();
  const writeback = new Writeback(file, 10);
  writeback.wrote(10);
  flushes[0].reject(new Error("Input/output error (os error 5)"));
  await assert.rejects(writeback.settle(), /Input\/output error/);
  writeback.wrote(10);
  flushes[1].resolve();
  // The first error stays: the final fsync may not report it again.
  await assert.rejects(writeback.settle(), /Input\/output error/);
});

Deno.test("writeback: a real file written with flushes under way ends complete", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "disk");
    const block = new Uint8Array(256 * 1024);
    {
      using file = await Deno.open(path, { write: true, createNew: true });
      const writeback = new Writeback(file, 1024 * 1024);
      for (let i = 0; i < 40; i++) {
        file.writeSync(block.fill(i));
        writeback.wrote(block.length);
      }
      await writeback.settle();
      await file.sync();
    }
    const data = await Deno.readFile(path);
    assert.equal(data.length, 40 * block.length);
    for (let i = 0; i < 40; i++) assert.equal(data[i * block.length + 1], i);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
