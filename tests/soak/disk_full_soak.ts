/**
 * A full disk: the emu home on a small tmpfs (root only: it mounts one), filled up to a
 * few MiB by a filler file, during pull, capture, suspend, checkpoint save and image
 * build. Each command fails with `disk_full` naming what it was writing (never
 * `internal`), publishes nothing half-written, and works once the filler is gone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer } from "../_helpers/http_server.ts";
import { needs, TOOLS, VM_TOOLS } from "../_helpers/require.ts";
import {
  assertNothingLeaked,
  explained,
  figure,
  fixtureBuildArgs,
  freePort,
  ok,
  publishedFixtureProfile,
  qemuProcessesWith,
  withSoakEnv,
} from "./_soak.ts";
import type { CliResult } from "../_helpers/cli.ts";

const MiB = 1024 * 1024;
const isRoot = Deno.uid() === 0;
if (!isRoot) {
  console.warn("IGNORED (not root): the disk-full scenarios mount a tmpfs; run them as root");
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

async function freeBytes(dir: string): Promise<number> {
  const text = await run("df", ["-B1", "--output=avail", dir]);
  return Number(text.trim().split("\n").at(-1));
}

/** A tmpfs of `sizeMiB` at a new directory under `parent`, unmounted after `fn`. */
async function withTmpfs(parent: string, sizeMiB: number, fn: (dir: string) => Promise<void>) {
  const dir = join(parent, "small");
  await Deno.mkdir(dir);
  await run("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=0700`, "tmpfs", dir]);
  try {
    await fn(dir);
  } finally {
    // Lazy: a QEMU the scenario failed to stop must not keep the mount (and the test) busy.
    await run("umount", ["-l", dir]).catch(() => {});
  }
}

/** Fills `dir`'s file system until `leaveMiB` are free; returns the filler's path. */
async function fill(dir: string, leaveMiB: number): Promise<string> {
  const filler = join(dir, "filler");
  const size = Math.max(0, (await freeBytes(dir)) - leaveMiB * MiB);
  await run("fallocate", ["-l", String(size), filler]);
  return filler;
}

/**
 * Files or directories under `dir` whose names say they are half-written. A download's
 * `.part` file is not: it is kept on purpose for the next pull to resume (which uses it up).
 */
async function halfWritten(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const resumable = e.name.endsWith(".part") && d.endsWith("/downloads");
      if (!resumable && /\.part$|\.tmp-|^\.capture-|\.old-|^\.publish-|^\.pull-/.test(e.name)) {
        found.push(join(d, e.name));
      }
      if (e.isDirectory) await walk(join(d, e.name));
    }
  };
  await walk(dir).catch(() => {});
  return found;
}

function diskFull(r: CliResult, what: string): void {
  assert.equal(explained(r, what), "disk_full", `${what}: ${r.stderr}`);
  assert.match(r.stderr, /hint: /);
}

Deno.test(
  "soak: a full disk during pull, capture, suspend and checkpoint save → disk_full, nothing half-published; works once there is space",
  { ignore: !isRoot || needs(...VM_TOOLS, TOOLS.zstd).ignore },
  async () => {
    const server = startServer();
    const parent = await Deno.makeTempDir({ prefix: "emu-full-" });
    try {
      await withTmpfs(parent, 400, async (home) => {
        await withSoakEnv(async (s) => {
          const profile = await publishedFixtureProfile(s, server);
          const emu = (args: string[]) => s.emu(["--config", profile, ...args]);
          const port = `http=${freePort()}`;
          const figures: string[] = [];

          // Pull: the release does not fit.
          let filler = await fill(home, 4);
          diskFull(await emu(["pull", "--skip-snapshot"]), "pull on a full disk");
          assert.deepEqual(await halfWritten(home), [], "pull: nothing half-written");
          await Deno.remove(filler);
          ok(await emu(["pull", "--skip-snapshot"]), "pull with space");
          const parts = await Array.fromAsync(Deno.readDir(join(home, "emu", "downloads")));
          assert.deepEqual(parts.map((e) => e.name), [], "the part file was used up");
          figures.push("pull");

          // Capture: the RAM state does not fit.
          filler = await fill(home, 8);
          diskFull(await emu(["capture"]), "capture on a full disk");
          assert.deepEqual(await halfWritten(home), [], "capture: nothing half-written");
          assert.deepEqual(await qemuProcessesWith(s.dir), [], "capture: QEMU stopped");
          await Deno.remove(filler);
          ok(await emu(["capture"]), "capture with space");
          figures.push("capture");

          // Suspend: the instance's state does not fit; the instance keeps running.
          ok(await emu(["start", "--port", port]), "start");
          ok(await emu(["exec", "--", "sh", "-c", "echo kept > /data/mark"]), "mark");
          filler = await fill(home, 4);
          diskFull(await emu(["suspend"]), "suspend on a full disk");
          assert.deepEqual(await halfWritten(home), [], "suspend: nothing half-written");
          await Deno.remove(filler);
          const after = await emu(["exec", "--", "cat", "/data/mark"]);
          if (after.code === 0) {
            assert.equal(after.stdout, "kept\n", "the instance ran on");
          } else {
            // A failed suspend may leave the guest stopped; start brings it back.
            ok(await emu(["start", "--port", port]), "start after a failed suspend");
          }
          ok(await emu(["suspend"]), "suspend with space");
          const start = ok(await emu(["--json", "start", "--port", port]), "start after suspend");
          assert.equal(JSON.parse(start.stdout).boot, "suspend");
          figures.push("suspend");

          // Checkpoint save: the RAM does not fit; the guest runs on, no half checkpoint.
          filler = await fill(home, 4);
          diskFull(await emu(["checkpoint", "save", "full"]), "checkpoint save on a full disk");
          assert.deepEqual(await halfWritten(home), [], "checkpoint save: nothing half-written");
          await Deno.remove(filler);
          const ran = ok(await emu(["exec", "--", "cat", "/data/mark"]), "exec after the save");
          assert.equal(ran.stdout, "kept\n", "the instance ran on");
          const none = ok(await emu(["--json", "checkpoint", "ls"]), "checkpoint ls");
          assert.deepEqual(JSON.parse(none.stdout), [], "no checkpoint was published");
          ok(await emu(["checkpoint", "save", "full"]), "checkpoint save with space");
          ok(await emu(["stop"]), "stop");
          figures.push("checkpoint save");
          await assertNothingLeaked(s, "at the end");
          figure(
            "disk full",
            `${figures.join(", ")}: disk_full, nothing half-written, then worked`,
          );
        }, { home: join(home, "emu") });
      });
    } finally {
      await server.close();
      await Deno.remove(parent, { recursive: true }).catch(() => {});
    }
  },
);

Deno.test(
  "soak: a full disk during image build → disk_full, no output; works once there is space",
  { ignore: !isRoot || needs(...VM_TOOLS, TOOLS.qemuImg).ignore },
  async () => {
    const parent = await Deno.makeTempDir({ prefix: "emu-full-" });
    try {
      await withTmpfs(parent, 64, async (outDir) => {
        await withSoakEnv(async (s) => {
          const out = join(outDir, "stack.qcow2");
          const build = await fixtureBuildArgs(s, out);
          const filler = await fill(outDir, 0);
          diskFull(await s.emu(build), "image build on a full disk");
          const left = (await Array.fromAsync(Deno.readDir(outDir))).map((e) => e.name);
          assert.deepEqual(left, ["filler"], "no output or temp file");
          assert.deepEqual(await qemuProcessesWith(s.dir), [], "no build QEMU left");
          await Deno.remove(filler);
          ok(await s.emu(build), "image build with space");
          figure("disk full", "image build: disk_full, no output, then worked");
        });
      });
    } finally {
      await Deno.remove(parent, { recursive: true }).catch(() => {});
    }
  },
);
