/**
 * `emu start`'s decisions — resume the suspended state, resume the snapshot (capturing
 * it first), or cold-boot, and what a failed resume falls back to — as a table, with the
 * boot steps replaced by recorders (no QEMU).
 */
import assert from "node:assert/strict";
import type { Snapshot } from "../../../src/vm/capture.ts";
import type { InstanceRecord } from "../../../src/vm/record.ts";
import { bootInstance, type BootSteps } from "../../../src/vm/start.ts";
import { type BootContext, ResumeFailed, type StartResult } from "../../../src/vm/start_types.ts";

type Outcome = "ok" | "fails" | "stale" | "breaks";

interface Row {
  name: string;
  suspended: boolean;
  cold: boolean;
  snapshots: boolean;
  suspendedResume?: Outcome;
  snapshotResume?: Outcome;
  /** Steps called, in order. */
  calls: string[];
  boot: string;
  fallback: RegExp | null;
  /** A step error that is not a ResumeFailed ends the start with it. */
  throws?: RegExp;
}

const TABLE: Row[] = [
  {
    name: "a suspended instance resumes its own state",
    suspended: true,
    cold: false,
    snapshots: true,
    suspendedResume: "ok",
    calls: ["resumeSuspended"],
    boot: "suspend",
    fallback: null,
  },
  {
    name: "a suspended state that failed to load → the snapshot, and says why",
    suspended: true,
    cold: false,
    snapshots: true,
    suspendedResume: "fails",
    snapshotResume: "ok",
    calls: ["resumeSuspended", "snapshot", "resume"],
    boot: "resume",
    fallback: /suspended state failed/,
  },
  {
    name: "a stale suspended state (null) → the snapshot, no fallback message",
    suspended: true,
    cold: false,
    snapshots: true,
    suspendedResume: "stale",
    snapshotResume: "ok",
    calls: ["resumeSuspended", "snapshot", "resume"],
    boot: "resume",
    fallback: null,
  },
  {
    name: "a fresh instance resumes the snapshot",
    suspended: false,
    cold: false,
    snapshots: true,
    snapshotResume: "ok",
    calls: ["snapshot", "resume"],
    boot: "resume",
    fallback: null,
  },
  {
    name: "a snapshot that fails to resume → a cold boot, and says why",
    suspended: false,
    cold: false,
    snapshots: true,
    snapshotResume: "fails",
    calls: ["snapshot", "resume", "coldBoot"],
    boot: "cold",
    fallback: /snapshot resume failed/,
  },
  {
    name: "--cold skips every resume, even a suspended state",
    suspended: true,
    cold: true,
    snapshots: true,
    calls: ["coldBoot"],
    boot: "cold",
    fallback: null,
  },
  {
    name: "no snapshots on this host (old QEMU) → a cold boot with the probe's reason",
    suspended: false,
    cold: false,
    snapshots: false,
    calls: ["coldBoot"],
    boot: "cold",
    fallback: /^QEMU 7\.2 has no mapped-ram$/,
  },
  {
    name: "an error that is not a failed resume ends the start (no cold boot)",
    suspended: false,
    cold: false,
    snapshots: true,
    snapshotResume: "breaks",
    calls: ["snapshot", "resume"],
    boot: "-",
    fallback: null,
    throws: /disk full/,
  },
];

function result(boot: string): StartResult {
  return {
    record: { boot } as unknown as InstanceRecord,
    alreadyRunning: false,
    health: [],
    bootMs: 1,
    timings: { total: 1 },
    secrets: {},
    fallback: null,
  };
}

for (const row of TABLE) {
  Deno.test(`start decisions: ${row.name}`, async () => {
    const calls: string[] = [];
    const progress: string[] = [];
    const outcome = (o: Outcome | undefined, what: string, boot: string) => {
      if (o === "fails") throw new ResumeFailed(`${what} failed (test)`);
      if (o === "breaks") throw new Error("disk full");
      return o === "stale" ? null : result(boot);
    };
    const steps: BootSteps = {
      resumeSuspended: () => {
        calls.push("resumeSuspended");
        return Promise.resolve(outcome(row.suspendedResume, "suspended state", "suspend"));
      },
      snapshot: () => {
        calls.push("snapshot");
        return Promise.resolve({} as Snapshot);
      },
      resume: () => {
        calls.push("resume");
        return Promise.resolve(outcome(row.snapshotResume, "snapshot resume", "resume")!);
      },
      coldBoot: () => {
        calls.push("coldBoot");
        return Promise.resolve(result("cold"));
      },
    };
    const ctx = {
      options: { cold: row.cold },
      probe: {
        snapshots: row.snapshots
          ? { supported: true, reason: "QEMU 10.0.2 has mapped-ram" }
          : { supported: false, reason: "QEMU 7.2 has no mapped-ram" },
      },
      progress: (t: string) => progress.push(t),
    } as unknown as BootContext;
    const previous = row.suspended ? { state: "suspended" } as InstanceRecord : null;
    if (row.throws) {
      await assert.rejects(bootInstance(ctx, previous, steps), row.throws);
      assert.deepEqual(calls, row.calls);
      return;
    }
    const r = await bootInstance(ctx, previous, steps);
    assert.deepEqual(calls, row.calls);
    assert.equal(r.record.boot, row.boot);
    if (row.fallback === null) assert.equal(r.fallback, null);
    else assert.match(r.fallback ?? "", row.fallback);
  });
}
