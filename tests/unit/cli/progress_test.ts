import assert from "node:assert/strict";
import type { CliIo } from "../../../src/cli/io.ts";
import {
  formatBytes,
  formatDuration,
  progressLine,
  ProgressReporter,
} from "../../../src/cli/progress.ts";

const MIB = 2 ** 20;

function io(terminal: boolean) {
  const lines: string[] = [];
  const fake: CliIo = {
    stdout: () => {},
    stderr: (t) => lines.push(t),
    stdoutBytes: () => {},
    stderrBytes: () => {},
    env: {},
    cwd: "/",
    stderrIsTerminal: terminal,
    uid: 0,
    tmpDir: "/tmp",
  };
  return { fake, lines };
}

Deno.test("progress: formatting of bytes, durations and the line", () => {
  assert.equal(formatBytes(1.5 * MIB), "1.5 MiB");
  assert.equal(formatBytes(3 * 1024 * MIB), "3.00 GiB");
  assert.equal(formatDuration(42.4), "42s");
  assert.equal(formatDuration(65), "1m05s");
  assert.equal(progressLine({ bytes: 10 * MIB, total: null, resumedFrom: 0 }, null), "  10.0 MiB");
  assert.equal(
    progressLine({ bytes: 75 * MIB, total: 100 * MIB, resumedFrom: 40 * MIB }, 5 * MIB),
    "  75.0 MiB / 100.0 MiB  75%  5.0 MiB/s  ETA 5s  (resumed at 40.0 MiB)",
  );
});

Deno.test("progress: a terminal redraws at most 10 times a second and ends with a newline", () => {
  const { fake, lines } = io(true);
  let now = 0;
  const r = new ProgressReporter(fake, { json: false, quiet: false, verbose: false }, () => now);
  for (let i = 1; i <= 100; i++) {
    now = i * 10; // every 10 ms for 1 s
    r.update({ bytes: i * MIB, total: 100 * MIB, resumedFrom: 0 });
  }
  r.done();
  assert.ok(lines.length <= 12, `${lines.length} writes`);
  assert.ok(lines.slice(0, -1).every((l) => l.startsWith("\r\x1b[K")));
  assert.match(lines.at(-2)!, /100\.0 MiB \/ 100\.0 MiB {2}100%/);
  assert.equal(lines.at(-1), "\n");
});

Deno.test("progress: plain lines every 5 s off a terminal; JSON events with --json; nothing with --quiet", () => {
  for (
    const [mode, terminal, expected] of [
      [{ json: false, quiet: false, verbose: false }, false, 3],
      [{ json: true, quiet: false, verbose: false }, false, 11],
      [{ json: false, quiet: true, verbose: false }, true, 0],
    ] as const
  ) {
    const { fake, lines } = io(terminal);
    let now = 0;
    const r = new ProgressReporter(fake, mode, () => now);
    for (let i = 0; i <= 100; i++) {
      now = i * 100; // 10 s in 100 ms steps
      r.update({ bytes: i * MIB, total: 200 * MIB, resumedFrom: 0 });
    }
    assert.equal(lines.length, expected, JSON.stringify(mode));
    if (mode.json) {
      const event = JSON.parse(lines.at(-1)!);
      assert.equal(event.event, "progress");
      assert.equal(event.total, 200 * MIB);
      assert.equal(event.bytes_per_second, 10 * MIB);
      assert.equal(event.eta_s, 10);
    }
  }
});
