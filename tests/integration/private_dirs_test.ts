/**
 * The emu home and the socket directory are private, tried as a second local account
 * would: a socket directory made by another user, one that others can write, or a
 * symlink is refused before any socket in it is used; a home left readable by an older
 * emu is tightened; a shared directory is refused as a home; what the real `emu` process
 * creates is 0600/0700.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const NOBODY = 65534;

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "emu-private-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function mode(path: string): string {
  return ((Deno.lstatSync(path).mode ?? 0) & 0o777).toString(8).padStart(4, "0");
}

const isRoot = Deno.uid() === 0;

Deno.test({
  name: "socket dir made by another user (/tmp/emu-<uid> pre-created) → refused, nothing used",
  ignore: !isRoot,
  fn: () =>
    withDir(async (dir) => {
      const run = join(dir, "run");
      await Deno.mkdir(run, { mode: 0o700 });
      await Deno.chown(run, NOBODY, NOBODY);
      const env = { EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: run };
      for (const args of [["status", "--name", "default"], ["stop"], ["exec", "--", "true"]]) {
        const r = await spawnEmu(args, { env });
        assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
        assert.match(
          r.stderr,
          new RegExp(
            `^error\\[runtime_dir_unusable\\]: Cannot use the socket directory ${run}: it belongs to uid ${NOBODY}, not to you \\(uid 0\\)\\n`,
          ),
        );
        assert.match(r.stderr, /Another user could reach emu's QEMU and guest-agent sockets/);
      }
      assert.deepEqual([...Deno.readDirSync(run)], [], "nothing was created in it");
      assert.equal(Deno.lstatSync(run).uid, NOBODY, "left as it was");
    }),
});

Deno.test("socket dir writable by others, or a symlink → refused; a readable one is tightened", () =>
  withDir(async (dir) => {
    const open = join(dir, "open");
    await Deno.mkdir(open);
    await Deno.chmod(open, 0o777);
    const env = (run: string) => ({ EMU_HOME: join(dir, "home"), EMU_RUNTIME_DIR: run });
    let r = await spawnEmu(["status", "--name", "default"], { env: env(open) });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^error\[runtime_dir_unusable\]: Cannot use the socket directory .*\/open: it is writable by other users \(mode 0777\)\n/,
    );
    assert.equal(mode(open), "0777", "not silently changed: somebody may have planted a socket");

    const real = join(dir, "real");
    await Deno.mkdir(real, { mode: 0o700 });
    const link = join(dir, "link");
    await Deno.symlink(real, link);
    r = await spawnEmu(["status", "--name", "default"], { env: env(link) });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot use the socket directory .*\/link: it is a symbolic link\n/);

    const readable = join(dir, "readable");
    await Deno.mkdir(readable);
    await Deno.chmod(readable, 0o755);
    r = await spawnEmu(["status", "--name", "default"], { env: env(readable) });
    assert.match(r.stderr, /^error\[instance_not_found\]/, "past the socket directory check");
    assert.equal(mode(readable), "0700");

    const doctor = await spawnEmu(["doctor", "--json"], { env: env(open) });
    assert.equal(doctor.code, 1);
    // The report, then the error as a second JSON document.
    const report = doctor.stdout.slice(0, doctor.stdout.indexOf("\n}\n") + 2);
    const check = JSON.parse(report).checks.find((c: { id: string }) => c.id === "runtime_dir");
    assert.equal(check.status, "fail");
    assert.match(check.summary, /it is writable by other users \(mode 0777\)$/);
  }));

Deno.test("a home left readable by an older emu is made private; a shared one is refused", () =>
  withDir(async (dir) => {
    const home = join(dir, "home");
    const inst = join(home, "instances", "default");
    await Deno.mkdir(inst, { recursive: true });
    await Deno.writeTextFile(join(inst, "run.qcow2"), "guest disk with secrets");
    for (const p of [home, join(home, "instances"), inst]) await Deno.chmod(p, 0o755);
    await Deno.chmod(join(inst, "run.qcow2"), 0o644);
    const r = await spawnEmu(["images", "ls"], { env: { EMU_HOME: home } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      [home, join(home, "instances"), inst, join(inst, "run.qcow2")].map(mode),
      ["0700", "0700", "0700", "0600"],
    );
    assert.equal(await Deno.readTextFile(join(inst, "run.qcow2")), "guest disk with secrets");

    const shared = join(dir, "shared");
    await Deno.mkdir(shared);
    await Deno.chmod(shared, 0o1777);
    const s = await spawnEmu(["images", "ls"], { env: { EMU_HOME: shared } });
    assert.equal(s.code, 1);
    assert.match(
      s.stderr,
      /^error\[home_unusable\]: Cannot use .*\/shared as the emu home: it is writable by other users \(mode 0777\)\n/,
    );
    assert.equal(mode(shared), "0777", "a shared directory is not changed");
  }));

Deno.test({
  name: "a home that belongs to another user is refused, not changed",
  ignore: !isRoot,
  fn: () =>
    withDir(async (dir) => {
      const home = join(dir, "home");
      await Deno.mkdir(home, { mode: 0o755 });
      await Deno.chown(home, NOBODY, NOBODY);
      const r = await spawnEmu(["images", "ls"], { env: { EMU_HOME: home } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error\[home_unusable\]: .*it belongs to uid 65534, not to you/);
      assert.equal(mode(home), "0755");
    }),
});

Deno.test(
  "what emu creates is private under umask 022: home and dirs 0700, files 0600",
  needs(TOOLS.qemuImg),
  () =>
    withDir(async (dir) => {
      if (!await requireTool("qemu-img", "qemu-utils")) return;
      const home = join(dir, "home");
      const disk = join(dir, "stack.qcow2");
      const img = await new Deno.Command("qemu-img", {
        args: ["create", "-q", "-f", "qcow2", disk, "16M"],
      }).output();
      assert.ok(img.success);
      // `sh -c 'umask 022; exec emu …'`: the user's umask does not loosen what emu writes.
      const out = await new Deno.Command("sh", {
        args: [
          "-c",
          `umask 022; exec "$0" run -A --config "$1" "$2" pull --source "$3" --skip-snapshot --json`,
          Deno.execPath(),
          new URL("../../deno.json", import.meta.url).pathname,
          new URL("../../main.ts", import.meta.url).pathname,
          disk,
        ],
        env: { EMU_HOME: home, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const stdout = new TextDecoder().decode(out.stdout);
      const { image } = JSON.parse(stdout);
      assert.deepEqual(
        [home, join(home, "images"), image.dir, image.disk, join(image.dir, "image.json")].map(
          mode,
        ),
        ["0700", "0700", "0700", "0600", "0600"],
      );
    }),
);
