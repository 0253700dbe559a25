/**
 * What an emu killed mid-command leaves, reproduced exactly (the record or the guest as
 * the kill leaves them) and put right by the next command (src/vm/recover.ts). Each
 * case is a bug the reliability soak found (RELIABILITY.md).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { QmpClient } from "../../src/protocol/mod.ts";
import { needs, VM_TOOLS } from "../_helpers/require.ts";
import { freePort, qemuProcessesWith, type VmEnv, withVmEnv } from "../_helpers/vm_env.ts";

function recordPath(vm: VmEnv): string {
  return join(vm.home, "instances", "default", "instance.json");
}

async function editRecord(vm: VmEnv, change: (r: Record<string, unknown>) => void) {
  const record = JSON.parse(await Deno.readTextFile(recordPath(vm)));
  change(record);
  await Deno.writeTextFile(recordPath(vm), JSON.stringify(record, null, 2));
}

async function started(vm: VmEnv, port: number) {
  const r = await vm.emu(["--json", "start", "--port", `http=${port}`]);
  assert.equal(r.code, 0, r.stderr);
  return { ...JSON.parse(r.stdout), stderr: r.stderr };
}

async function guest(vm: VmEnv, script: string): Promise<string> {
  const r = await vm.emu(["exec", "--", "sh", "-c", script]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

Deno.test(
  "interrupted: a start killed after the guest was healthy but before it was recorded running starts again (secrets rotated), not 'already running'",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      await started(vm, port);
      const secret = await guest(vm, "cat /run/emu/secrets.env");
      await editRecord(vm, (r) => r.state = "starting");
      const again = await started(vm, port);
      assert.equal(again.already_running, false);
      assert.equal(again.boot, "resume");
      assert.match(
        again.stderr,
        /instance default: an interrupted start left QEMU \(pid \d+\) behind; starting again\n/,
      );
      assert.notEqual(await guest(vm, "cat /run/emu/secrets.env"), secret, "rotated again");
      assert.equal((await qemuProcessesWith(vm.dir)).length, 1);
    }),
);

Deno.test(
  "interrupted: a guest paused by a killed suspend runs on with its RAM (it is not restarted)",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const first = await started(vm, port);
      await guest(vm, "echo in-ram > /tmp/mark");
      {
        await using qmp = await QmpClient.connect(first.sockets.qmp);
        await qmp.stop();
      }
      const again = await started(vm, port);
      assert.equal(again.already_running, true);
      assert.equal(again.pid, first.pid);
      assert.match(
        again.stderr,
        /instance default: an interrupted suspend or checkpoint had paused the guest; it runs on\n/,
      );
      assert.equal(await guest(vm, "cat /tmp/mark"), "in-ram\n");
    }),
);

Deno.test(
  "interrupted: a QEMU that no record names (start killed between launch and record) is stopped, not left holding the port",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const first = await started(vm, port);
      await editRecord(vm, (r) => {
        r.state = "stopped";
        r.pid = null;
      });
      const again = await started(vm, port);
      assert.match(
        again.stderr,
        new RegExp(
          `instance default: an interrupted start left QEMU \\(pid ${first.pid}\\) unrecorded; stopping it\\n`,
        ),
      );
      assert.notEqual(again.pid, first.pid);
      assert.deepEqual(await qemuProcessesWith(vm.dir), [again.pid]);
    }),
);

Deno.test(
  "interrupted: a suspend killed after saving but before recording is resumed (the guest's RAM is kept)",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const first = await started(vm, port);
      await guest(vm, "echo in-ram > /tmp/mark");
      assert.equal((await vm.emu(["suspend"])).code, 0);
      // As the kill leaves it: the state saved, QEMU gone, the record still "running".
      await editRecord(vm, (r) => {
        r.state = "running";
        r.pid = first.pid;
      });
      const again = await started(vm, port);
      assert.equal(again.boot, "suspend");
      assert.match(
        again.stderr,
        /instance default: an interrupted suspend had saved the guest; it will be resumed\n/,
      );
      assert.equal(await guest(vm, "cat /tmp/mark"), "in-ram\n");
    }),
);

Deno.test(
  "interrupted: a suspend's staging directory and a suspended state no record claims are removed",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      await started(vm, port);
      assert.equal((await vm.emu(["stop"])).code, 0);
      const dir = join(vm.home, "instances", "default");
      await Deno.mkdir(join(dir, "suspend.tmp-0badf00d"));
      await Deno.writeFile(join(dir, "suspend.tmp-0badf00d", "state.raw"), new Uint8Array(4096));
      await Deno.mkdir(join(dir, "suspend"));
      await Deno.writeTextFile(join(dir, "suspend", "snapshot.json"), '{"schema":1}');
      const again = await started(vm, port);
      assert.equal(again.boot, "resume", "the stale state was not resumed");
      const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
      assert.ok(!names.some((n) => n.startsWith("suspend")), `left: ${names}`);
    }),
);
