/**
 * The instance lifecycle with the fast fixture guest under TCG, through the real `emu`
 * process: start, status, exec, stop, reset, run, two instances side by side.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, qemuProcessesWith, withVmEnv } from "../_helpers/vm_env.ts";
import { needs, VM_TOOLS } from "../_helpers/require.ts";

Deno.test(
  "lifecycle: start → healthy → status --json → exec → graceful stop → reset",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const start = await vm.emu(["start", "--port", `http=${port}`]);
      assert.equal(start.code, 0, start.stderr);
      assert.match(
        start.stdout,
        new RegExp(
          `^instance default is healthy after resuming its snapshot in \\d+\\.\\d s\\n {2}http {7}http://127\\.0\\.0\\.1:${port}\\n$`,
        ),
      );
      // The first start captured the snapshot, then resumed it.
      assert.match(start.stderr, /capturing a snapshot of emu-fast-fixture/);
      assert.doesNotMatch(start.stderr, /warning/);

      const status = await vm.emu(["status", "--json", "--name", "default"]);
      assert.equal(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout);
      assert.equal(s.state, "running");
      assert.equal(s.healthy, true);
      assert.equal(s.vm_status, "running");
      assert.equal(s.boot, "resume");
      assert.match(s.snapshot, /^[0-9a-f]{16}$/);
      assert.equal(s.image.name, "emu-fast-fixture");
      assert.ok(s.pid > 0 && s.uptime_s >= 0);
      assert.deepEqual(s.ports, {
        http: { guest: 8080, host: port, scheme: "http", url: `http://127.0.0.1:${port}` },
      });
      assert.deepEqual(
        s.health.map((
          h: { name: string; ok: boolean; status: number },
        ) => [h.name, h.ok, h.status]),
        [["http", true, 200]],
      );

      // Run-time values arrive with the rotation, not from the snapshot's boot.
      const exec = await vm.emu([
        "exec",
        "--",
        "sh",
        "-c",
        "grep ^EMU_ /run/emu/secrets.env; echo to-stderr >&2; exit 7",
      ]);
      assert.equal(exec.code, 7);
      assert.equal(
        exec.stdout,
        `EMU_INSTANCE=default\nEMU_PROFILE=fast-fixture\nEMU_HTTP_HOST_PORT=${port}\n`,
      );
      assert.equal(exec.stderr, "to-stderr\n");

      const again = await vm.emu(["start", "--port", `http=${port}`]);
      assert.equal(again.code, 0);
      assert.equal(again.stdout.split("\n")[0], "instance default is already running and healthy");

      const stop = await vm.emu(["stop", "--json"]);
      assert.equal(stop.code, 0, stop.stderr);
      const stopped = JSON.parse(stop.stdout);
      assert.equal(
        stopped.method,
        "powerdown",
        "the graceful path was taken: no SIGTERM, no SIGKILL",
      );
      assert.equal(stopped.was_running, true);
      const record = JSON.parse(
        await Deno.readTextFile(join(vm.home, "instances", "default", "instance.json")),
      );
      assert.equal(record.state, "stopped");
      assert.equal(record.stop_method, "powerdown");
      assert.deepEqual(await qemuProcessesWith(vm.dir), []);
      assert.ok(
        (await Deno.stat(join(vm.home, "instances", "default", "serial.log"))).size > 0,
        "serial log kept",
      );
      assert.ok(
        (await Deno.stat(join(vm.home, "instances", "default", "run.qcow2"))).isFile,
        "run disk kept",
      );

      const down = await vm.emu(["status"]);
      assert.equal(down.code, 1);
      assert.match(down.stdout, /^default: stopped\n/);

      const reset = await vm.emu(["reset"]);
      assert.equal(reset.code, 0);
      assert.equal(
        await Deno.stat(join(vm.home, "instances", "default")).then(() => true, () => false),
        false,
      );
    }),
);

Deno.test(
  "lifecycle: two instances side by side on different ports",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const [pa, pb] = [freePort(), freePort()];
      const [a, b] = await Promise.all([
        vm.emu(["start", "--name", "a", "--port", `http=${pa}`]),
        vm.emu(["start", "--name", "b", "--port", `http=${pb}`]),
      ]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      const all = JSON.parse((await vm.emu(["status", "--json"])).stdout);
      assert.deepEqual(
        all.instances.map((i: { name: string; healthy: boolean }) => [i.name, i.healthy]),
        [["a", true], ["b", true]],
      );
      for (const [name, port] of [["a", pa], ["b", pb]] as const) {
        const body = await (await fetch(`http://127.0.0.1:${port}/cgi-bin/health`)).text();
        assert.match(body, new RegExp(`instance=${name}\\n`));
      }
      assert.equal((await vm.emu(["stop", "--name", "a"])).code, 0);
      assert.equal(
        JSON.parse((await vm.emu(["status", "--json", "--name", "b"])).stdout).healthy,
        true,
        "b unaffected",
      );
    }),
);

Deno.test(
  "lifecycle: two emu homes, one socket directory, the same instance name: each reaches its own guest",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const homeB = join(vm.dir, "home-b");
      const emuB = (args: string[]) => vm.emu(args, { EMU_HOME: homeB });
      try {
        const [pa, pb] = [freePort(), freePort()];
        const a = await vm.emu(["start", "--port", `http=${pa}`]);
        assert.equal(a.code, 0, a.stderr);
        const b = await emuB(["start", "--port", `http=${pb}`]);
        assert.equal(b.code, 0, b.stderr);
        const sockets = (await Array.fromAsync(Deno.readDir(vm.runtimeDir))).map((e) => e.name);
        assert.equal(sockets.filter((n) => n.endsWith("-default.qmp")).length, 2, sockets.join());

        const port = "grep ^EMU_HTTP_HOST_PORT= /run/emu/secrets.env";
        const inA = await vm.emu(["exec", "--", "sh", "-c", port]);
        const inB = await emuB(["exec", "--", "sh", "-c", port]);
        assert.equal(inA.stdout, `EMU_HTTP_HOST_PORT=${pa}\n`, "home A's exec ran in A's guest");
        assert.equal(inB.stdout, `EMU_HTTP_HOST_PORT=${pb}\n`, "home B's exec ran in B's guest");

        assert.equal((await emuB(["stop"])).code, 0);
        const statusA = JSON.parse(
          (await vm.emu(["status", "--json", "--name", "default"])).stdout,
        );
        assert.equal(statusA.healthy, true, "stopping B's default left A's running");
        assert.equal(
          (await vm.emu(["exec", "--", "sh", "-c", port])).stdout,
          `EMU_HTTP_HOST_PORT=${pa}\n`,
        );
      } finally {
        await emuB(["reset", "--all"]);
      }
    }),
);

Deno.test(
  "lifecycle: run -- passes the URLs, returns the child's code, and stops the VM it started",
  needs(...VM_TOOLS),
  () =>
    withVmEnv(async (vm) => {
      const port = freePort();
      const r = await vm.emu([
        "run",
        "--port",
        `http=${port}`,
        "--",
        "sh",
        "-c",
        'curl -sf "$EMU_HTTP_URL/cgi-bin/health" && echo "port=$EMU_HTTP_PORT" && ' +
        'echo "env_secret_sha256=$(printf %s "$API_SECRET" | sha256sum | cut -c1-64)"; exit 3',
      ]);
      assert.equal(r.code, 3, r.stderr);
      const m = new RegExp(
        `^ok\\ninstance=default\\napi_secret_sha256=([0-9a-f]{64})\\nport=${port}\\nenv_secret_sha256=([0-9a-f]{64})\\n$`,
      ).exec(r.stdout);
      assert.ok(m, r.stdout);
      assert.equal(m[2], m[1], "the child got the secret the guest was rotated to");
      assert.match(r.stderr, /stopping instance default/);
      assert.deepEqual(await qemuProcessesWith(vm.dir), [], "the VM it started is stopped");

      // A running instance is reused and left running.
      assert.equal((await vm.emu(["start", "--port", `http=${port}`])).code, 0);
      const reuse = await vm.emu(["run", "--", "true"]);
      assert.equal(reuse.code, 0);
      assert.match(
        reuse.stderr,
        /reusing running instance default \(its secrets are not passed on: start it with `emu start --save-secrets` for that\)/,
      );
      assert.equal((await qemuProcessesWith(vm.dir)).length, 1);

      // --save-secrets: a 0600 file that a later `emu run` hands on; stop removes it.
      assert.equal((await vm.emu(["stop"])).code, 0);
      const saved = await vm.emu(["start", "--save-secrets", "--port", `http=${port}`]);
      assert.equal(saved.code, 0, saved.stderr);
      const file = join(vm.home, "instances", "default", "secrets.env");
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      const secret = /^API_SECRET=([0-9a-f]{64})\n$/.exec(await Deno.readTextFile(file))?.[1];
      assert.ok(secret);
      const withSaved = await vm.emu([
        "run",
        "--",
        "sh",
        "-c",
        'printf %s "$API_SECRET" | sha256sum | cut -c1-64; curl -sf "$EMU_HTTP_URL/cgi-bin/health"',
      ]);
      assert.equal(withSaved.code, 0, withSaved.stderr);
      assert.match(withSaved.stderr, /reusing running instance default with its saved secrets/);
      const [given, , , guest] = withSaved.stdout.trim().split("\n");
      assert.equal(guest, `api_secret_sha256=${given}`, "the saved secret is the guest's");
      assert.equal(
        given,
        new TextDecoder().decode(
          (await new Deno.Command("sh", { args: ["-c", `printf %s ${secret} | sha256sum`] })
            .output())
            .stdout,
        ).slice(0, 64),
      );
      assert.equal((await vm.emu(["stop"])).code, 0);
      assert.equal(await Deno.stat(file).catch(() => null), null, "stop removes the saved secrets");
    }),
);
