/**
 * Checkpoints with the fast fixture guest under TCG: save keeps the guest running;
 * restore brings back its disk, its RAM, its secret, the host's time; restore twice,
 * after a stop; what cannot be removed or restored is refused with nothing changed;
 * reset removes them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { emuArgs } from "../_helpers/cli.ts";
import { freePort, secretHash, type VmEnv, withVmEnv } from "../_helpers/vm_env.ts";
import { needs, VM_TOOLS } from "../_helpers/require.ts";

/** What the guest holds on its disk (/data) and in RAM (/run). */
async function guestNotes(vm: VmEnv): Promise<string> {
  const r = await vm.emu(["exec", "--", "sh", "-c", "cat /data/note /run/note"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function write(vm: VmEnv, text: string): Promise<void> {
  const r = await vm.emu([
    "exec",
    "--",
    "sh",
    "-c",
    `echo ${text} >> /data/note; echo ${text} >> /run/note; sync`,
  ]);
  assert.equal(r.code, 0, r.stderr);
}

Deno.test(
  "checkpoint: save keeps the guest running; restore brings back disk, RAM, secret and the host's time, twice; rm and reset",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const ports = ["--port", `http=${port}`];
      assert.equal((await vm.emu(["start", "--save-secrets", ...ports])).code, 0);
      await write(vm, "seeded");
      const seededSecret = await secretHash(port);

      const save = await vm.emu(["checkpoint", "save", "seeded", "--json"]);
      assert.equal(save.code, 0, save.stderr);
      const saved = JSON.parse(save.stdout);
      assert.equal(saved.checkpoint, "seeded");
      assert.equal(saved.secrets, true);
      assert.ok(saved.bytes > 0 && saved.paused_ms > 0);
      const dir = join(vm.home, "instances", "default", "checkpoints", "seeded");
      assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
        "disk.qcow2",
        "runtime.iso",
        "secrets.env",
        "snapshot.json",
        "state.raw",
      ]);
      assert.equal((await Deno.stat(join(dir, "secrets.env"))).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(join(dir, "disk.qcow2"))).mode! & 0o222, 0, "read-only");
      // The instance ran on, healthy, with its data.
      const status = JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout);
      assert.equal(status.healthy, true);
      assert.equal(await guestNotes(vm), "seeded\nseeded\n");

      await write(vm, "later");
      assert.equal(await guestNotes(vm), "seeded\nlater\nseeded\nlater\n");
      // A new start elsewhere rotates: the restore must bring back the seeded secret.
      assert.equal((await vm.emu(["stop"])).code, 0);
      assert.equal((await vm.emu(["reset"])).code, 0, "reset would remove the checkpoint");
      assert.equal(
        await Deno.stat(dir).then(() => true, () => false),
        false,
        "reset removed the checkpoints",
      );

      // Again, to restore: save, change, restore, twice.
      assert.equal((await vm.emu(["start", "--save-secrets", ...ports])).code, 0);
      await write(vm, "seeded");
      const secret = await secretHash(port);
      assert.notEqual(secret, seededSecret, "a fresh start rotated");
      assert.equal((await vm.emu(["checkpoint", "save", "seeded"])).code, 0);
      const savedSecrets = await Deno.readTextFile(join(dir, "secrets.env"));
      for (const round of [1, 2]) {
        await write(vm, `later${round}`);
        const restore = await vm.emu(["checkpoint", "restore", "seeded", "--json"]);
        assert.equal(restore.code, 0, restore.stderr);
        const r = JSON.parse(restore.stdout);
        assert.equal(r.boot, "checkpoint");
        assert.equal(r.checkpoint, "seeded");
        assert.ok(r.timings.load >= 0 && r.timings.total === r.boot_ms);
        assert.doesNotMatch(restore.stderr, /rotating/, "no rotation on restore");
        assert.equal(await guestNotes(vm), "seeded\nseeded\n", `round ${round}`);
        assert.equal(await secretHash(port), secret, "the checkpoint's secret answers");
        assert.equal(
          await Deno.readTextFile(join(vm.home, "instances", "default", "secrets.env")),
          savedSecrets,
          "emu run passes the checkpoint's secrets on",
        );
        const before = Date.now() / 1000;
        const clock = await vm.emu(["exec", "--", "date", "+%s"]);
        const after = Date.now() / 1000;
        const guest = Number(clock.stdout.trim());
        assert.ok(guest >= Math.floor(before - 1) && guest <= Math.floor(after + 1));
      }

      // The instance runs on the checkpoint's disk: it cannot go.
      const rm = await vm.emu(["checkpoint", "rm", "seeded"]);
      assert.equal(rm.code, 1);
      assert.match(
        rm.stderr,
        /error\[checkpoint_in_use\]: Cannot remove checkpoint seeded: instance default runs on its disk/,
      );
      assert.ok(await Deno.stat(dir).then(() => true), "nothing removed");
      const ls = JSON.parse((await vm.emu(["checkpoint", "ls", "--json"])).stdout);
      assert.deepEqual(ls.map((c: { name: string; in_use: boolean }) => [c.name, c.in_use]), [
        ["seeded", true],
      ]);
      // A second checkpoint, saved on the restored one, keeps it needed too.
      assert.equal((await vm.emu(["checkpoint", "save", "two"])).code, 0);
      const all = await vm.emu(["checkpoint", "rm", "--all", "--json"]);
      assert.equal(all.code, 0, all.stderr);
      assert.deepEqual(JSON.parse(all.stdout).removed, ["two"]);
      assert.deepEqual(JSON.parse(all.stdout).kept, [
        { name: "seeded", why: "instance default runs on its disk" },
      ]);

      const reset = await vm.emu(["reset"]);
      assert.equal(reset.code, 0);
      assert.match(reset.stdout, /instance default reset: its disk and its 1 checkpoint are gone/);
    }),
);

Deno.test(
  "checkpoint: restore after a stop; a mismatched checkpoint, a missing one, a bad name and a stopped instance are refused with nothing changed",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const ports = ["--port", `http=${port}`];
      const notRunning = await vm.emu(["checkpoint", "save", "x"]);
      assert.equal(notRunning.code, 1);
      assert.match(notRunning.stderr, /error\[instance_not_running\]/);

      assert.equal((await vm.emu(["start", ...ports])).code, 0);
      await write(vm, "seeded");
      assert.equal((await vm.emu(["checkpoint", "save", "seeded"])).code, 0);
      const again = await vm.emu(["checkpoint", "save", "seeded"]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /error\[checkpoint_exists\]/);
      const bad = await vm.emu(["checkpoint", "save", "../up"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /error\[usage\]: Cannot use "\.\.\/up" as a checkpoint name/);
      const missing = await vm.emu(["checkpoint", "restore", "nope"]);
      assert.equal(missing.code, 1);
      assert.match(
        missing.stderr,
        /error\[checkpoint_not_found\].*\nhint: Its checkpoints: seeded\./,
      );

      // Past the configured total, ls (and save) warn.
      const big = await vm.emu(["checkpoint", "ls"], { EMU_CHECKPOINT_WARN_GIB: "0" });
      assert.equal(big.code, 0);
      assert.match(big.stdout, /^seeded +\S+ +\d+ MiB\ntotal \d+ MiB\n$/);
      assert.match(
        big.stderr,
        /warning: the checkpoints of instance default take \d+\.\d GiB \(over EMU_CHECKPOINT_WARN_GIB=0\)/,
      );
      assert.doesNotMatch((await vm.emu(["checkpoint", "ls"])).stderr, /warning/);

      // Restore after the instance was stopped.
      await write(vm, "later");
      assert.equal((await vm.emu(["stop"])).code, 0);
      const restored = await vm.emu(["checkpoint", "restore", "seeded"]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.equal(await guestNotes(vm), "seeded\nseeded\n");

      // A profile whose VM differs (more memory): the checkpoint no longer fits.
      const profile = JSON.parse(await Deno.readTextFile(vm.profile));
      profile.image.source = join(vm.profile, "..");
      profile.vm.memory_mib += 64;
      const other = join(vm.dir, "bigger.json");
      await Deno.writeTextFile(other, JSON.stringify(profile));
      const pid = JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout).pid;
      const mismatch = await vm.emu(["--config", other, "checkpoint", "restore", "seeded"]);
      assert.equal(mismatch.code, 1);
      assert.match(
        mismatch.stderr,
        /error\[checkpoint_mismatch\]: Cannot restore checkpoint seeded: it no longer matches \(memory was 256, now 320/,
      );
      const after = JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout);
      assert.equal(after.pid, pid, "the running instance was not touched");
      assert.equal(after.healthy, true);
    }),
);

Deno.test(
  "checkpoint: emu run --checkpoint restores before the command, hands it the checkpoint's secret, and leaves the guest as the command left it (or restores again with --restore-after)",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      assert.equal((await vm.emu(["start", "--save-secrets", "--port", `http=${port}`])).code, 0);
      await write(vm, "seeded");
      assert.equal((await vm.emu(["checkpoint", "save", "seeded"])).code, 0);
      const secret = /^API_SECRET=(.*)$/m.exec(
        await Deno.readTextFile(join(vm.home, "instances", "default", "secrets.env")),
      )![1];
      await write(vm, "later");
      // The child writes to the guest through emu itself, then exits 3.
      const child = [
        Deno.execPath(),
        ...emuArgs([
          "--config",
          vm.profile,
          "exec",
          "--",
          "sh",
          "-c",
          "echo during >> /data/note; echo during >> /run/note",
        ]),
      ].map((a) => `'${a}'`).join(" ");
      const script =
        `test "$API_SECRET" = "${secret}" && echo "url=$EMU_HTTP_URL" && ${child} && exit 3`;
      const run = await vm.emu(["run", "--checkpoint", "seeded", "--", "sh", "-c", script]);
      assert.equal(run.code, 3, run.stderr);
      assert.equal(run.stdout, `url=http://127.0.0.1:${port}\n`);
      assert.equal(
        await guestNotes(vm),
        "seeded\nduring\nseeded\nduring\n",
        "as the command left it",
      );
      const status = JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout);
      assert.equal(status.healthy, true, "still running");

      const again = await vm.emu([
        "run",
        "--checkpoint",
        "seeded",
        "--restore-after",
        "--",
        "sh",
        "-c",
        `${child} && exit 0`,
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await guestNotes(vm), "seeded\nseeded\n", "restored again afterwards");

      const usage = await vm.emu(["run", "--restore-after", "--", "true"]);
      assert.equal(usage.code, 2);
      assert.match(
        usage.stderr,
        /error\[usage\]: Cannot use --restore-after without --checkpoint NAME/,
      );
    }),
);
