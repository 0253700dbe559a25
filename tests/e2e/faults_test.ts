/**
 * Lifecycle faults with the fast fixture guest: a killed emu, a killed QEMU, a busy port,
 * a health check that never passes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { emuArgs } from "../_helpers/cli.ts";
import { find } from "../_helpers/find.ts";
import { freePort, qemuProcessesWith, type VmEnv, withVmEnv } from "../_helpers/vm_env.ts";
import { needs, VM_TOOLS } from "../_helpers/require.ts";

Deno.test(
  "faults: emu killed with SIGKILL during start; the next start recovers",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const child = new Deno.Command(Deno.execPath(), {
        args: emuArgs(["--config", vm.profile, "start", "--port", `http=${port}`]),
        env: vm.env,
        stdout: "null",
        stderr: "null",
      }).spawn();
      // Kill it while its first QEMU (the snapshot capture) is booting.
      for (let i = 0; i < 400 && (await qemuProcessesWith(vm.dir)).length === 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      child.kill("SIGKILL");
      await child.status;
      const again = await vm.emu(["start", "--port", `http=${port}`]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(
        JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout).healthy,
        true,
      );
      assert.equal((await qemuProcessesWith(vm.dir)).length, 1, "one QEMU, not two");
    }),
);

Deno.test(
  "faults: QEMU killed while a capture boots → qemu_failed with the guest console's last lines; nothing left",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: emuArgs(["--config", vm.profile, "capture"]),
        env: vm.env,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = child.output();
      // Once the guest has written to its console, its QEMU is killed.
      let said = "";
      for (let i = 0; i < 1200 && said === ""; i++) {
        const [staging] = await find(vm.home, /^\.capture-/);
        if (staging) {
          said = (await Deno.readTextFile(join(staging, "capture.log")).catch(() => "")).trim();
        }
        if (said === "") await new Promise((r) => setTimeout(r, 25));
      }
      assert.notEqual(said, "", "the capture's guest wrote to its console");
      const pids = await qemuProcessesWith(vm.dir);
      assert.equal(pids.length, 1, "one QEMU: the capture's");
      Deno.kill(pids[0], "SIGKILL");
      const out = await output;
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.match(
        stderr,
        new RegExp(
          `error\\[qemu_failed\\]: Cannot capture a snapshot: QEMU \\(pid ${
            pids[0]
          }\\) exited while emu was working with it\\nLast serial console lines:\\n\\S`,
        ),
      );
      assert.match(stderr, /hint: Something stopped it \(the OOM killer, a kill, a crash/);
      assert.deepEqual(await find(vm.home, /^\.capture-/), [], "no staging directory left");
    }),
);

Deno.test(
  "faults: QEMU killed under a running instance → status says crashed; start restarts it",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      assert.equal((await vm.emu(["start", "--port", `http=${port}`])).code, 0);
      const [pid] = await qemuProcessesWith(vm.dir);
      Deno.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && (await qemuProcessesWith(vm.dir)).length; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const status = await vm.emu(["status"]);
      assert.equal(status.code, 1);
      assert.match(
        status.stdout,
        /^default: CRASHED: its QEMU is gone \(run `emu start` to restart it\)\n/,
      );
      const restart = await vm.emu(["start", "--port", `http=${port}`]);
      assert.equal(restart.code, 0, restart.stderr);
      assert.match(restart.stderr, new RegExp(`its QEMU \\(pid ${pid}\\) is gone; cleaning up`));
      assert.equal(
        JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout).healthy,
        true,
      );
    }),
);

Deno.test(
  "faults: a busy host port → clear error before QEMU starts",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const port = (listener.addr as Deno.NetAddr).port;
        const r = await vm.emu(["start", "--port", `http=${port}`]);
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          new RegExp(
            `^error\\[port_in_use\\]: Cannot forward port http: 127\\.0\\.0\\.1:${port} is in use by process ${Deno.pid} \\(deno\\)\\nhint: Stop it, or pick another host port: emu start --port http=PORT`,
          ),
        );
        assert.deepEqual(await qemuProcessesWith(vm.dir), [], "QEMU never started");
      } finally {
        listener.close();
      }
    }),
);

Deno.test(
  "faults: a port held by another instance names that instance",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      assert.equal((await vm.emu(["start", "--name", "first", "--port", `http=${port}`])).code, 0);
      const r = await vm.emu(["start", "--name", "second", "--port", `http=${port}`]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(`127\\.0\\.0\\.1:${port} is in use by emu instance "first"`),
      );
    }),
);

/** The fixture's profile with a health check that never passes (a 404 page). */
async function brokenHealthProfile(vm: VmEnv): Promise<string> {
  const profile = JSON.parse(await Deno.readTextFile(vm.profile));
  profile.image.source = join(vm.profile, "..");
  profile.health = [{ name: "broken", port: "http", path: "/no-such-page", status: 200 }];
  const bad = join(vm.dir, "broken.json");
  await Deno.writeTextFile(bad, JSON.stringify(profile));
  return bad;
}

Deno.test(
  "faults: a capture whose guest never becomes healthy → snapshot_failed with the serial tail; nothing left",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const bad = await brokenHealthProfile(vm);
      const r = await vm.emu(["--config", bad, "capture", "--timeout", "8"]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /error\[snapshot_failed\]: Cannot capture a snapshot: Cannot get a healthy stack within \d+ s: broken \(GET http:\/\/127\.0\.0\.1:\d+\/no-such-page\) answered 404, expected 200\nLast serial console lines:\n(.*\n)*EMU_READY\n/,
      );
      assert.match(
        r.stderr,
        /hint: The image did not become healthy on a cold boot; `emu start --cold`/,
      );
      assert.deepEqual(await qemuProcessesWith(vm.dir), [], "the capture's QEMU is stopped");
      assert.deepEqual(await find(vm.home, /^\.capture-/), [], "no staging directory is left");
    }),
);

Deno.test(
  "faults: a health check that never passes → timeout naming it, with the serial tail",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const bad = await brokenHealthProfile(vm);
      const port = freePort();
      const r = await vm.emu([
        "--config",
        bad,
        "start",
        "--cold",
        "--port",
        `http=${port}`,
        "--timeout",
        "8",
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `error\\[health_timeout\\]: Cannot get a healthy stack within \\d+ s: broken \\(GET http://127\\.0\\.0\\.1:${port}/no-such-page\\) answered 404, expected 200\\nLast serial console lines:\\n(.*\\n)*EMU_READY\\n`,
        ),
      );
      assert.match(
        r.stderr,
        /hint: The VM is left running: `emu logs --name default`, then `emu stop --name default`/,
      );
      assert.match(r.stderr, /waiting for health check broken/);
      assert.equal((await qemuProcessesWith(vm.dir)).length, 1, "left running for emu logs");
      const logs = await vm.emu(["logs"]);
      assert.match(logs.stdout, /EMU_READY/);

      const stopped = await vm.emu([
        "--config",
        bad,
        "start",
        "--cold",
        "--name",
        "other",
        "--port",
        `http=${freePort()}`,
        "--timeout",
        "8",
        "--stop-on-failure",
      ]);
      assert.equal(stopped.code, 1);
      assert.match(stopped.stderr, /hint: The VM was stopped\./);
      assert.equal(
        (await qemuProcessesWith(vm.dir)).length,
        1,
        "only the first instance is still running",
      );
    }),
);
