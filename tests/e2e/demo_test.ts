/**
 * The demo stack (Debian 12 + PostgreSQL + the API, built by `emu image build` from
 * cloud-init/demo/) under TCG, through the real `emu` process: its cloud-init read emu's
 * `cidata` ISO (the real-kernel ISO check), it boots to healthy, and every start rotates
 * both the API secret and the database password so the old ones stop working. Slow (a
 * debootstrap and a provisioning boot the first time; .ci/run builds the image first).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDemoBase, ensureDemoImage } from "../../fixtures/demo.ts";
import { spawnEmu } from "../_helpers/cli.ts";
import { needs, requireTool, TOOLS, VM_TOOLS } from "../_helpers/require.ts";
import { freePort, qemuProcessesWith, type VmEnv, withVmEnv } from "../_helpers/vm_env.ts";

async function demoTools(): Promise<boolean> {
  return await requireTool("debootstrap", "debootstrap", ["--version"]) &&
    await requireTool("mkfs.ext4", "e2fsprogs", ["-V"]) &&
    await requireTool("psql", "postgresql-client");
}

const demoProfile = async () => (await ensureDemoImage({ log: () => {} })).profile;

/** Starts through `emu run --keep` (the way a CI job gets secrets); returns them. */
async function startAndGetSecrets(
  vm: VmEnv,
  ports: string[],
): Promise<{ api: string; db: string; stderr: string }> {
  const r = await vm.emu([
    "run",
    "--keep",
    ...ports,
    "--",
    "sh",
    "-c",
    'printf "%s %s\\n" "$API_SECRET" "$DB_PASSWORD"',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [api, db] = r.stdout.trim().split(" ");
  assert.match(api, /^[0-9a-f]{64}$/);
  assert.match(db, /^[0-9a-f]{64}$/);
  return { api, db, stderr: r.stderr };
}

async function api(port: number, secret: string | null, body?: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/notes`, {
    method: body === undefined ? "GET" : "POST",
    headers: secret === null ? {} : { Authorization: `Bearer ${secret}` },
    body,
    // A paused guest never answers (a checkpoint save once left one so): fail, not hang.
    signal: AbortSignal.timeout(60_000),
  });
  await res.body?.cancel();
  return res.status;
}

/** psql logged in to the demo database as app through the forwarded port, SQL on stdin. */
function spawnPsql(port: number, password: string, flags: string[] = []): Deno.ChildProcess {
  return new Deno.Command("psql", {
    args: ["-X", ...flags, "-h", "127.0.0.1", "-p", String(port), "-U", "app", "-d", "app"],
    env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: "10" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Counts the notes through the forwarded port; psql's exit code and output. */
async function psql(port: number, password: string): Promise<{ code: number; out: string }> {
  const out = spawnPsql(port, password, ["-A", "-t"]);
  const w = out.stdin.getWriter();
  await w.write(new TextEncoder().encode("SELECT count(*) FROM notes;\n"));
  await w.close();
  const r = await out.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout).trim() + dec.decode(r.stderr).trim() };
}

/** The guest's clock (GNU date, to the nanosecond) is within 1 s of the host's. */
async function assertGuestClock(vm: VmEnv): Promise<void> {
  const before = Date.now() / 1000;
  const clock = await vm.emu(["exec", "--", "date", "+%s.%N"]);
  const after = Date.now() / 1000;
  const guest = Number(clock.stdout.trim());
  assert.ok(
    guest >= before - 1 && guest <= after + 1,
    `guest clock ${guest} is not within 1 s of the host's ${before.toFixed(2)}…${after.toFixed(2)}`,
  );
}

/** One SQL query run as postgres in the guest; its unaligned output, trimmed. */
async function guestSql(vm: VmEnv, sql: string): Promise<string> {
  const r = await vm.emu([
    "exec",
    "--",
    "setpriv",
    "--reuid=postgres",
    "--regid=postgres",
    "--clear-groups",
    "--",
    "/usr/lib/postgresql/15/bin/psql",
    "-XAtc",
    sql,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** The iteration part of the app role's stored SCRAM verifier. */
function verifierIterations(vm: VmEnv): Promise<string> {
  return guestSql(
    vm,
    "SELECT split_part(rolpassword, ':', 1) FROM pg_authid WHERE rolname = 'app'",
  );
}

Deno.test(
  "demo stack: healthy on resume; each start rotates API secret and DB password",
  needs(...VM_TOOLS, TOOLS.debootstrap, TOOLS.mkfs, TOOLS.psql),
  async () => {
    if (!await demoTools()) return;
    await withVmEnv(async (vm) => {
      const apiPort = freePort();
      const dbPort = freePort();
      const ports = ["--port", `api=${apiPort}`, "--port", `db=${dbPort}`];

      const first = await startAndGetSecrets(vm, ports);
      assert.match(first.stderr, /capturing a snapshot of demo/);
      const status = JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout);
      assert.equal(status.boot, "resume", "the first start resumed the snapshot it captured");
      assert.equal(status.healthy, true);

      // QEMU gives every resumed VM a new generation ID; the guest kernel (CONFIG_VMGENID)
      // reseeds its RNG, so two starts of one snapshot never share random state.
      const reseed = await vm.emu([
        "exec",
        "--",
        "sh",
        "-c",
        "dmesg | grep -c 'crng reseeded due to virtual machine fork'",
      ]);
      assert.equal(reseed.code, 0, reseed.stderr);
      assert.ok(Number(reseed.stdout.trim()) >= 1, reseed.stdout);

      // The guest clock is the host's (GNU date: to the nanosecond), within 1 s.
      await assertGuestClock(vm);
      // That clock jumped forward since the capture: the maintenance timers that would
      // have fallen due in between (apt, dpkg's backup, e2scrub) are masked in the image.
      const timers = await vm.emu([
        "exec",
        "--",
        "systemctl",
        "is-enabled",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "dpkg-db-backup.timer",
        "e2scrub_all.timer",
      ]);
      assert.equal(timers.stdout, "masked\nmasked\nmasked\nmasked\n", timers.stderr);
      // The API applied the password over its own session (emu-rotate's fast path): its
      // light SCRAM verifier has 16 iterations; psql's would have PostgreSQL's 4096.
      assert.equal(await verifierIterations(vm), "SCRAM-SHA-256$16");
      // ...and renamed the two files emu-rotate wrote as `.new` into place (no `mv`
      // process): nothing left half-way, the run-time values this start's.
      const files = await vm.emu([
        "exec",
        "--",
        "sh",
        "-c",
        "ls -A /etc/emu /run/emu; grep -x EMU_API_HOST_PORT=[0-9]* /run/emu/runtime.env",
      ]);
      assert.equal(
        files.stdout,
        `/etc/emu:\nsecrets.env\n\n/run/emu:\nruntime.env\nEMU_API_HOST_PORT=${apiPort}\n`,
        files.stderr,
      );

      const health = await (await fetch(`http://127.0.0.1:${apiPort}/health`)).json();
      assert.equal(health.status, "ok");
      assert.equal(health.instance, "default");
      assert.equal(await api(apiPort, null), 401);
      assert.equal(
        await api(apiPort, "placeholder-api-secret"),
        401,
        "the baked-in placeholder is dead",
      );
      assert.equal(await api(apiPort, first.api, "hello from the first start"), 201);
      assert.equal(await api(apiPort, first.api), 200);
      assert.deepEqual(await psql(dbPort, first.db), { code: 0, out: "1" });
      const placeholder = await psql(dbPort, "placeholder-db-password");
      assert.equal(placeholder.code, 2);
      assert.match(placeholder.out, /password authentication failed for user "app"/);

      // A second start from the pristine snapshot gets new secrets; the old ones are refused.
      assert.equal((await vm.emu(["reset"])).code, 0);
      const second = await startAndGetSecrets(vm, ports);
      assert.notEqual(second.api, first.api);
      assert.notEqual(second.db, first.db);
      assert.equal(
        JSON.parse((await vm.emu(["status", "--json", "--name", "default"])).stdout).boot,
        "resume",
      );
      assert.equal(await api(apiPort, first.api), 401);
      assert.equal(await api(apiPort, second.api), 200);
      const old = await psql(dbPort, first.db);
      assert.equal(old.code, 2);
      assert.match(old.out, /password authentication failed for user "app"/);
      // The pristine snapshot has no notes: reset dropped the first start's data.
      assert.deepEqual(await psql(dbPort, second.db), { code: 0, out: "0" });

      // A rotation ends every other session of the role (they logged in with an old
      // password): a session held open through the forwarded port, then emu-rotate run
      // by hand while the API is up (its fast path: the prepared listing, then the kill).
      const held = spawnPsql(dbPort, second.db);
      const heldIn = held.stdin.getWriter();
      await heldIn.write(new TextEncoder().encode("SELECT pg_sleep(120);\n"));
      const sessions = () =>
        guestSql(vm, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'");
      for (let i = 0; i < 50 && await sessions() !== "2"; i++) {
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(await sessions(), "2", "the API's session and the held one");
      const third = { api: "a".repeat(64), db: "b".repeat(64) };
      const byHand = await vm.emu([
        "exec",
        "--",
        "sh",
        "-c",
        `printf 'API_SECRET=${third.api}\\nDB_PASSWORD=${third.db}\\n' | /usr/local/bin/emu-rotate`,
      ]);
      assert.equal(byHand.code, 0, byHand.stderr);
      await heldIn.close().catch(() => {}); // psql may have exited already
      const ended = await held.output();
      assert.notEqual(ended.code, 0);
      assert.match(
        new TextDecoder().decode(ended.stderr),
        /terminating connection due to administrator command/,
      );
      assert.equal(await sessions(), "1", "only the API's session is left");
      assert.equal(await verifierIterations(vm), "SCRAM-SHA-256$16", "the API's fast path");
      assert.deepEqual(await psql(dbPort, third.db), { code: 0, out: "0" });
      assert.equal(await api(apiPort, third.api), 200);

      // A cold boot rotates too: the rotate command waits for PostgreSQL to come up.
      assert.equal((await vm.emu(["reset"])).code, 0);
      const cold = await vm.emu(["start", "--cold", "--save-secrets", ...ports]);
      assert.equal(cold.code, 0, cold.stderr);
      assert.match(cold.stdout, /healthy after a cold boot/);
      const saved = await Deno.readTextFile(join(vm.home, "instances", "default", "secrets.env"));
      const coldApi = /^API_SECRET=([0-9a-f]{64})$/m.exec(saved)![1];
      const coldDb = /^DB_PASSWORD=([0-9a-f]{64})$/m.exec(saved)![1];
      assert.equal(await api(apiPort, coldApi), 200);
      // On a cold boot the API is not up when emu rotates: psql set the password.
      assert.equal(await verifierIterations(vm), "SCRAM-SHA-256$4096");
      assert.equal(await api(apiPort, second.api), 401);
      assert.deepEqual(await psql(dbPort, coldDb), { code: 0, out: "0" });
    }, { profile: demoProfile });
  },
);

Deno.test(
  "demo stack: --no-rotation keeps the public placeholders and says so",
  needs(...VM_TOOLS, TOOLS.debootstrap, TOOLS.mkfs, TOOLS.psql),
  async () => {
    if (!await demoTools()) return;
    await withVmEnv(async (vm) => {
      const apiPort = freePort();
      const r = await vm.emu([
        "start",
        "--no-rotation",
        "--port",
        `api=${apiPort}`,
        "--port",
        `db=${freePort()}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /warning: --no-rotation: secrets were NOT rotated; API_SECRET, DB_PASSWORD keep the values baked into the snapshot/,
      );
      assert.equal(await api(apiPort, "placeholder-api-secret"), 200);
    }, { profile: demoProfile });
  },
);

Deno.test(
  "image build: a guest that reports failure stops the build; no output, log kept",
  needs(TOOLS.debootstrap, TOOLS.mkfs, TOOLS.psql),
  async () => {
    if (!await demoTools()) return;
    const base = await ensureDemoBase({ log: () => {} });
    const dir = await Deno.makeTempDir({ prefix: "emu-build-fail-" });
    try {
      const ud = join(dir, "ud");
      await Deno.mkdir(ud);
      await Deno.writeTextFile(
        join(ud, "user-data"),
        "#cloud-config\nruncmd:\n  - [sh, -c, 'echo EMU_PROVISION_FAILED database setup failed > /dev/ttyS0']\n",
      );
      const out = join(dir, "out", "stack.qcow2");
      const r = await spawnEmu(
        ["image", "build", "--base", base.dir, "--user-data", ud, "--out", out],
        { env: { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: join(dir, "run") } },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /error\[provision_failed\]: Cannot build the image: the guest reported failure after \d+ s: database setup failed\nlast lines of the guest console:\n/,
      );
      assert.match(
        r.stderr,
        /hint: Nothing was written\. The whole console is in \S+stack\.build\.log\.\n/,
      );
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(join(dir, "out")))).map((e) => e.name),
        ["stack.build.log"],
      );
      assert.deepEqual(await qemuProcessesWith(dir), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "demo stack: checkpoint — seed a note, save, add notes, restore: exactly the seeded note, the checkpoint's secrets, the clock right, the RNG reseeded",
  needs(...VM_TOOLS, TOOLS.debootstrap, TOOLS.mkfs, TOOLS.psql),
  async () => {
    if (!await demoTools()) return;
    await withVmEnv(async (vm) => {
      const apiPort = freePort();
      const dbPort = freePort();
      const ports = ["--port", `api=${apiPort}`, "--port", `db=${dbPort}`];
      assert.equal((await vm.emu(["start", "--save-secrets", ...ports])).code, 0);
      const saved = await Deno.readTextFile(join(vm.home, "instances", "default", "secrets.env"));
      const secret = /^API_SECRET=([0-9a-f]{64})$/m.exec(saved)![1];
      const db = /^DB_PASSWORD=([0-9a-f]{64})$/m.exec(saved)![1];
      assert.equal(await api(apiPort, secret, "seeded"), 201);

      const save = await vm.emu(["checkpoint", "save", "seeded"]);
      assert.equal(save.code, 0, save.stderr);
      assert.equal(await api(apiPort, secret, "second"), 201, "the stack ran on");
      assert.equal(await api(apiPort, secret, "third"), 201);

      const restore = await vm.emu(["checkpoint", "restore", "seeded"]);
      assert.equal(restore.code, 0, restore.stderr);
      const notes = await fetch(`http://127.0.0.1:${apiPort}/notes`, {
        headers: { Authorization: `Bearer ${secret}` },
      });
      assert.equal(notes.status, 200, "the API answers with the checkpoint's secret");
      assert.deepEqual((await notes.json()).map((n: { body: string }) => n.body), ["seeded"]);
      assert.deepEqual(await psql(dbPort, db), { code: 0, out: "1" }, "and its DB password");

      await assertGuestClock(vm);
      // Every resume gets a new VM generation ID: the checkpoint's log has the reseed of
      // the start it was saved in; the restored guest adds its own.
      const reseed = await vm.emu([
        "exec",
        "--",
        "sh",
        "-c",
        "dmesg | grep -c 'crng reseeded due to virtual machine fork'",
      ]);
      assert.ok(Number(reseed.stdout.trim()) >= 2, `reseeds: ${reseed.stdout}`);
    }, { profile: demoProfile });
  },
);
