/**
 * Capture and resume with the fast fixture guest under TCG: the resume path, secret
 * rotation, --no-rotation, a corrupted snapshot, a mismatched snapshot, a capture
 * killed midway, and the guest clock after resume.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MAIN } from "../_helpers/cli.ts";
import {
  freePort,
  PLACEHOLDER_SECRET_SHA256,
  qemuProcessesWith,
  secretHash,
  type VmEnv,
  withVmEnv,
} from "../_helpers/vm_env.ts";
import { needs, VM_TOOLS } from "../_helpers/require.ts";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function snapshotDirs(vm: VmEnv): Promise<string[]> {
  const root = join(vm.home, "snapshots");
  const out: string[] = [];
  for await (const image of Deno.readDir(root)) {
    for await (const snap of Deno.readDir(join(root, image.name))) {
      if (snap.isDirectory) out.push(join(root, image.name, snap.name));
    }
  }
  return out.sort();
}

Deno.test(
  "snapshot: capture, then start resumes (not a cold boot) with a rotated secret; a reset start rotates again",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const capture = await vm.emu(["capture", "--json"]);
      assert.equal(capture.code, 0, capture.stderr);
      const meta = JSON.parse(capture.stdout);
      assert.equal(meta.reused, false);
      // The guest's RAM is a file of its own, exactly the guest's size, sparse; the state
      // file holds only the devices.
      assert.equal(meta.ram.file, "ram.raw");
      assert.equal(meta.ram.logical_bytes, 256 * 1024 * 1024, "the RAM file is the guest's RAM");
      assert.ok(meta.ram.allocated_bytes < meta.ram.logical_bytes, "and sparse");
      assert.ok(meta.state.logical_bytes < 4 * 1024 * 1024, "device state only");
      assert.match(
        capture.stderr,
        /saving the device state \(the guest's RAM is already in its file\)\n/,
      );
      // BusyBox's date takes no fraction of a second: resumes go straight to the agent.
      assert.equal(meta.clock, "guest-set-time");
      const [dir] = await snapshotDirs(vm);
      assert.equal(
        (await Deno.stat(join(dir, "disk.qcow2"))).mode! & 0o222,
        0,
        "capture disk is read-only",
      );

      const port = freePort();
      const start = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(start.code, 0, start.stderr);
      const record = JSON.parse(start.stdout);
      assert.equal(record.boot, "resume");
      assert.equal(record.snapshot, meta.fingerprint);
      assert.equal(record.fallback, null);
      // Where the start's time went, phase by phase (they run one after another here).
      assert.deepEqual(Object.keys(record.timings), [
        "prepare",
        "launch",
        "record",
        "qmp",
        "load",
        "cont",
        "agent",
        "clock",
        "rotate",
        "health",
        "total",
      ]);
      assert.ok(
        Object.values(record.timings as Record<string, number>).every((ms) =>
          Number.isInteger(ms) && ms >= 0
        ),
      );
      assert.equal(record.timings.total, record.boot_ms);
      assert.match(
        start.stderr,
        new RegExp(`resumed snapshot ${meta.fingerprint} in \\d+\\.\\d+ s\\nrotating 1 secret`),
      );
      assert.doesNotMatch(start.stderr, /capturing/);
      const first = await secretHash(port);
      assert.notEqual(first, PLACEHOLDER_SECRET_SHA256, "the placeholder was replaced");

      assert.equal((await vm.emu(["reset"])).code, 0);
      assert.equal((await vm.emu(["start", "--port", `http=${port}`])).code, 0);
      const second = await secretHash(port);
      assert.notEqual(second, first, "every start gets a fresh secret");
      assert.notEqual(second, PLACEHOLDER_SECRET_SHA256);
    }),
);

Deno.test(
  "snapshot: --compress keeps ram.zst; the first resume decompresses it once, sparse",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const capture = await vm.emu(["capture", "--compress", "--json"]);
      assert.equal(capture.code, 0, capture.stderr);
      assert.match(capture.stderr, /compressing the guest RAM \(zstd\)/);
      const meta = JSON.parse(capture.stdout);
      assert.equal(meta.ram.file, "ram.zst");
      assert.equal(meta.state.file, "state.raw");
      assert.ok(meta.ram.compressed_bytes < meta.ram.allocated_bytes / 2, JSON.stringify(meta));
      const [dir] = await snapshotDirs(vm);
      const files = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
      assert.deepEqual(files, [
        "capture.log",
        "disk.qcow2",
        "ram.zst",
        "runtime.iso",
        "snapshot.json",
        "state.raw",
      ]);

      const port = freePort();
      const first = await vm.emu(["start", "--port", `http=${port}`]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /decompressing the snapshot's RAM \(once; sparse\)\n/);
      assert.match(first.stderr, /resumed snapshot [0-9a-f]{16} in/);
      assert.match(first.stdout, /healthy after resuming its snapshot/);
      const raw = await Deno.stat(join(dir, "ram.raw"));
      assert.equal(raw.size, meta.ram.logical_bytes);
      assert.ok(raw.blocks! * 512 < raw.size / 2, "zero pages are holes, not written zeros");
      // The same bytes the guest's RAM had: the real zstd CLI agrees with our decompression.
      const cmp = await new Deno.Command("sh", {
        args: ["-c", `zstd -dc '${join(dir, "ram.zst")}' | cmp - '${join(dir, "ram.raw")}'`],
      }).output();
      assert.equal(cmp.code, 0, new TextDecoder().decode(cmp.stderr));

      assert.equal((await vm.emu(["reset"])).code, 0);
      const second = await vm.emu(["start", "--port", `http=${port}`]);
      assert.equal(second.code, 0, second.stderr);
      assert.doesNotMatch(second.stderr, /decompressing/);
      assert.match(second.stdout, /healthy after resuming its snapshot/);
    }),
);

Deno.test(
  "snapshot: --no-rotation keeps the placeholder and says so loudly",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const r = await vm.emu(["start", "--no-rotation", "--port", `http=${port}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /warning: --no-rotation: secrets were NOT rotated; API_SECRET keep the values baked into the snapshot/,
      );
      assert.equal(await secretHash(port), PLACEHOLDER_SECRET_SHA256);
    }),
);

Deno.test(
  "snapshot: a corrupted state file → cold boot fallback, snapshot marked bad, next start recaptures",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      assert.equal((await vm.emu(["capture"])).code, 0);
      const [dir] = await snapshotDirs(vm);
      const state = await Deno.open(join(dir, "state.raw"), { write: true });
      await state.write(crypto.getRandomValues(new Uint8Array(4096)));
      state.close();
      const port = freePort();
      const r = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(r.code, 0, r.stderr);
      const record = JSON.parse(r.stdout);
      assert.equal(record.boot, "cold");
      assert.match(
        record.fallback,
        /^resume failed \(.*\); snapshot marked bad, it will be recaptured$/,
      );
      assert.match(r.stderr, /warning: no resume: resume failed/);
      assert.notEqual(await secretHash(port), PLACEHOLDER_SECRET_SHA256, "a cold boot rotates too");
      const meta = JSON.parse(await Deno.readTextFile(join(dir, "snapshot.json")));
      assert.ok(meta.bad?.reason, "marked bad");

      assert.equal((await vm.emu(["reset"])).code, 0);
      const again = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /the snapshot was marked bad \(.*\): recapturing/);
      assert.equal(JSON.parse(again.stdout).boot, "resume");
    }),
);

Deno.test(
  "snapshot: its disk deleted → the resume names it before QEMU starts, cold boot, snapshot marked bad",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      assert.equal((await vm.emu(["capture"])).code, 0);
      const [dir] = await snapshotDirs(vm);
      const disk = join(dir, "disk.qcow2");
      await Deno.chmod(disk, 0o600);
      await Deno.remove(disk);
      const port = freePort();
      const r = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(r.code, 0, r.stderr);
      const record = JSON.parse(r.stdout);
      assert.equal(record.boot, "cold");
      assert.equal(
        record.fallback,
        `resume failed (its disk ${disk} is missing); snapshot marked bad, it will be recaptured`,
      );
      const meta = JSON.parse(await Deno.readTextFile(join(dir, "snapshot.json")));
      assert.equal(meta.bad?.reason, `its disk ${disk} is missing`);
      assert.equal((await vm.emu(["stop"])).code, 0);
    }),
);

Deno.test(
  "snapshot: a snapshot.json that does not match this QEMU is recaptured, never resumed",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      assert.equal((await vm.emu(["capture"])).code, 0);
      const [dir] = await snapshotDirs(vm);
      const meta = JSON.parse(await Deno.readTextFile(join(dir, "snapshot.json")));
      meta.qemu_version = "QEMU emulator version 9.2.0";
      meta.accel = "kvm";
      await Deno.writeTextFile(join(dir, "snapshot.json"), JSON.stringify(meta));
      const r = await vm.emu(["start", "--json", "--port", `http=${freePort()}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /the snapshot does not match this host \(QEMU was QEMU emulator version 9\.2\.0, now QEMU emulator version \d+.*; accelerator was kvm, now tcg\): recapturing/,
      );
      assert.equal(JSON.parse(r.stdout).boot, "resume");
      assert.equal(JSON.parse(await Deno.readTextFile(join(dir, "snapshot.json"))).accel, "tcg");
    }),
);

Deno.test(
  "snapshot: emu killed with SIGKILL mid-capture leaves the previous snapshot usable",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const first = JSON.parse((await vm.emu(["capture", "--json"])).stdout);
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", CONFIG, MAIN, "--config", vm.profile, "capture", "--force"],
        env: vm.env,
        stdout: "null",
        stderr: "null",
      }).spawn();
      const [dir] = await snapshotDirs(vm);
      const parent = join(dir, "..");
      // Kill it once its capture VM is running.
      for (let i = 0; i < 400; i++) {
        const staging = (await Array.fromAsync(Deno.readDir(parent))).some((e) =>
          e.name.startsWith(".capture-")
        );
        if (staging && (await qemuProcessesWith(vm.dir)).length > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      child.kill("SIGKILL");
      await child.status;
      const start = await vm.emu(["start", "--json", "--port", `http=${freePort()}`]);
      assert.equal(start.code, 0, start.stderr);
      const record = JSON.parse(start.stdout);
      assert.equal(record.boot, "resume");
      assert.equal(record.snapshot, first.fingerprint, "the previous snapshot, intact");
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(parent))).map((e) => e.name).filter((n) =>
          n.startsWith(".capture-")
        ),
        [],
        "the interrupted capture was cleaned up",
      );
      assert.equal(
        (await qemuProcessesWith(vm.dir)).length,
        1,
        "the orphaned capture QEMU is gone",
      );
    }),
);

Deno.test(
  "snapshot: the guest clock is set to host time on resume",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      assert.equal((await vm.emu(["capture"])).code, 0);
      // Without emu setting it, the resumed guest clock would lag by this wait.
      await new Promise((r) => setTimeout(r, 6000));
      const start = await vm.emu(["start", "-v", "--port", `http=${freePort()}`]);
      assert.equal(start.code, 0, start.stderr);
      // -v shows where the start's time went.
      assert.match(
        start.stderr,
        /debug: timings: prepare \d+ ms · launch \d+ ms · .* total \d+ ms\n/,
      );
      // BusyBox's date has whole seconds only: the guest's second must fall between the
      // host's just before and just after it was read (within 1 s of the host).
      const before = Date.now() / 1000;
      const r = await vm.emu(["exec", "--", "date", "+%s"]);
      const after = Date.now() / 1000;
      const guest = Number(r.stdout.trim());
      assert.ok(
        guest >= Math.floor(before - 1) && guest <= Math.floor(after + 1),
        `guest clock ${guest} is not within 1 s of the host's ${before.toFixed(1)}…${
          after.toFixed(1)
        }`,
      );
    }),
);

Deno.test(
  "suspend: a file on disk and a file in RAM survive suspend → stop → start; secrets kept; reset is pristine",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      assert.equal((await vm.emu(["start", "--port", `http=${port}`])).code, 0);
      const secret = await secretHash(port);
      assert.equal(
        (await vm.emu([
          "exec",
          "--",
          "sh",
          "-c",
          "echo on-disk > /data/file; echo in-ram > /run/marker",
        ])).code,
        0,
      );
      const suspend = await vm.emu(["suspend"]);
      assert.equal(suspend.code, 0, suspend.stderr);
      assert.match(
        suspend.stdout,
        /^instance default suspended in \d+\.\d s; `emu start` resumes it\n$/,
      );
      assert.deepEqual(await qemuProcessesWith(vm.dir), [], "suspend stops the VM");
      const status = await vm.emu(["status"]);
      assert.equal(status.code, 1);
      assert.match(
        status.stdout,
        /^default: suspended \(the next `emu start` resumes it, data and secrets kept\)\n/,
      );
      assert.match((await vm.emu(["stop"])).stdout, /was not running/);

      const start = await vm.emu(["start", "--json", "--port", `http=${port}`]);
      assert.equal(start.code, 0, start.stderr);
      assert.equal(JSON.parse(start.stdout).boot, "suspend");
      assert.match(start.stderr, /resumed the suspended state in \d+\.\d+ s \(secrets kept\)/);
      const files = await vm.emu(["exec", "--", "cat", "/data/file", "/run/marker"]);
      assert.equal(files.stdout, "on-disk\nin-ram\n");
      assert.equal(await secretHash(port), secret, "secrets kept");

      assert.equal((await vm.emu(["reset"])).code, 0);
      assert.equal((await vm.emu(["start", "--port", `http=${port}`])).code, 0);
      const pristine = await vm.emu([
        "exec",
        "--",
        "sh",
        "-c",
        "ls /data/file /run/marker 2>&1; true",
      ]);
      assert.match(pristine.stdout, /No such file or directory/);
    }),
);
