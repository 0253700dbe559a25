/** The ISO writer against the real filesystem: atomic output, bad input, determinism, memory. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { entriesFromDirectory, type IsoEntry, writeIso, writeIsoFile } from "../../src/iso/mod.ts";
import { spawnEmu } from "../_helpers/cli.ts";
import { isoinfoExtract, requireIsoReaders } from "../_helpers/iso_readers.ts";
import { ISO_READERS, needs } from "../_helpers/require.ts";

const text = (s: string) => new TextEncoder().encode(s);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "emu-iso-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

const BAD_INPUTS: [string, IsoEntry[], string][] = [
  [
    "a path with ..",
    [{ path: "ok", data: text("1") }, { path: "../escape", data: text("2") }],
    'Cannot add "../escape" to the ISO image: ".." is not allowed in a path',
  ],
  [
    "an absolute path",
    [{ path: "/etc/passwd", data: text("x") }],
    'Cannot add "/etc/passwd" to the ISO image: absolute paths are not allowed',
  ],
  ["duplicate paths", [{ path: "user-data", data: text("1") }, {
    path: "user-data",
    data: text("2"),
  }], 'Cannot add "user-data" to the ISO image: the path is listed twice'],
  [
    "a missing source file",
    [{ path: "user-data", sourcePath: "/nonexistent/user-data" }],
    'Cannot add "user-data" to the ISO image: cannot read /nonexistent/user-data: no such file',
  ],
];

for (const [what, entries, message] of BAD_INPUTS) {
  Deno.test(`bad input: ${what} → clear error, no output and no temp file`, () =>
    withTempDir(async (dir) => {
      const out = join(dir, "seed.iso");
      await assert.rejects(writeIsoFile(entries, out, { label: "cidata" }), {
        code: "iso_invalid_input",
        message,
      });
      assert.deepEqual(await listDir(dir), []);
    }));
}

Deno.test("bad input leaves an existing image untouched", () =>
  withTempDir(async (dir) => {
    const out = join(dir, "seed.iso");
    await writeIsoFile([{ path: "user-data", data: text("v1") }], out, { label: "cidata" });
    const before = await sha256(out);
    await assert.rejects(
      writeIsoFile([{ path: "../x", data: text("v2") }], out, { label: "cidata" }),
    );
    await assert.rejects(
      writeIsoFile([{ path: "x", data: text("v2") }], out, { label: "bad label" }),
      {
        code: "iso_invalid_input",
      },
    );
    assert.equal(await sha256(out), before);
    assert.deepEqual(await listDir(dir), ["seed.iso"]);
  }));

Deno.test("an aborted write leaves no output and no temp file", () =>
  withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "big"), new Uint8Array(8 * 1024 * 1024));
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(
      writeIsoFile([{ path: "big", sourcePath: join(dir, "big") }], join(dir, "out.iso"), {
        label: "x",
        signal: controller.signal,
      }),
      { message: "stop" },
    );
    assert.deepEqual(await listDir(dir), ["big"]);
  }));

Deno.test("determinism: two builds of the same directory have the same sha256", () =>
  withTempDir(async (dir) => {
    const src = join(dir, "src");
    await Deno.mkdir(join(src, "sub"), { recursive: true });
    await Deno.writeTextFile(join(src, "user-data"), "#cloud-config\n");
    await Deno.writeTextFile(join(src, "sub", "file"), "x".repeat(5000));
    await writeIsoFile(await entriesFromDirectory(src), join(dir, "a.iso"), { label: "cidata" });
    // Touch the files: mtimes are not part of the image.
    await Deno.utime(join(src, "user-data"), 1, 1);
    await writeIsoFile(await entriesFromDirectory(src), join(dir, "b.iso"), { label: "cidata" });
    assert.equal(await sha256(join(dir, "a.iso")), await sha256(join(dir, "b.iso")));
  }));

Deno.test("SOURCE_DATE_EPOCH sets the timestamps; an invalid one is refused", () =>
  withTempDir(async (dir) => {
    const entries = [{ path: "x", data: text("x") }];
    const a = await writeIsoFile(entries, join(dir, "a.iso"), {
      label: "x",
      env: { SOURCE_DATE_EPOCH: "1700000000" },
    });
    assert.equal(a.date.toISOString(), "2023-11-14T22:13:20.000Z");
    const pvd = (await Deno.readFile(join(dir, "a.iso"))).subarray(16 * 2048);
    assert.equal(new TextDecoder().decode(pvd.subarray(813, 829)), "2023111422132000");
    const none = await writeIsoFile(entries, join(dir, "b.iso"), { label: "x", env: {} });
    assert.equal(none.date.toISOString(), "1970-01-01T00:00:00.000Z");
    await assert.rejects(
      writeIsoFile(entries, join(dir, "c.iso"), { label: "x", env: { SOURCE_DATE_EPOCH: "soon" } }),
      {
        message: 'Cannot use SOURCE_DATE_EPOCH="soon": it must be whole seconds since 1970',
      },
    );
  }));

Deno.test("writeIso to a WritableStream gives the same bytes as writeIsoFile", () =>
  withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "blob"), new Uint8Array(3 * 1024 * 1024 + 5).fill(7));
    const entries: IsoEntry[] = [{ path: "blob", sourcePath: join(dir, "blob") }, {
      path: "a/b",
      data: text("b"),
    }];
    await writeIsoFile(entries, join(dir, "file.iso"), { label: "x" });
    const hash = createHash("sha256");
    let size = 0;
    const result = await writeIso(
      entries,
      new WritableStream({ write: (c) => void (hash.update(c), size += c.length) }),
      { label: "x" },
    );
    assert.equal(size, result.bytes);
    assert.equal(hash.digest("hex"), await sha256(join(dir, "file.iso")));
  }));

Deno.test({
  name: "a 1 GiB file is streamed with bounded memory (peak RSS measured)",
  // The peak RSS comes from /proc: Linux only (the macOS CI job reports this as ignored).
  ignore: Deno.build.os !== "linux",
}, () =>
  withTempDir(async (dir) => {
    const big = join(dir, "big.bin");
    using f = await Deno.open(big, { write: true, create: true });
    await f.truncate(1024 * 1024 * 1024);
    const script = `
      import { writeIsoFile } from ${
      JSON.stringify(new URL("../../src/iso/mod.ts", import.meta.url).href)
    };
      await writeIsoFile([{ path: "big.bin", sourcePath: ${JSON.stringify(big)} }], ${
      JSON.stringify(join(dir, "big.iso"))
    }, { label: "x" });
      const status = await Deno.readTextFile("/proc/self/status");
      console.log(/VmHWM:\\s+(\\d+) kB/.exec(status)[1]);
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stderr: "inherit",
    }).output();
    assert.ok(out.success);
    const peakMiB = Number(new TextDecoder().decode(out.stdout).trim()) / 1024;
    console.log(`peak RSS writing a 1 GiB file: ${peakMiB.toFixed(0)} MiB`);
    assert.ok(peakMiB < 200, `peak RSS ${peakMiB} MiB`);
    const metadata = (await Deno.stat(join(dir, "big.iso"))).size - 1024 * 1024 * 1024;
    assert.ok(
      metadata > 0 && metadata % 2048 === 0 && metadata < 64 * 1024,
      `metadata ${metadata} bytes`,
    );
  }));

Deno.test(
  "emu iso DIR -o OUT --label: real process, readable seed, exit codes",
  needs(...ISO_READERS),
  () =>
    withTempDir(async (dir) => {
      if (!await requireIsoReaders()) return;
      const seed = join(dir, "seed");
      await Deno.mkdir(seed);
      await Deno.writeTextFile(join(seed, "user-data"), "#cloud-config\n");
      await Deno.writeTextFile(join(seed, "meta-data"), "instance-id: emu\n");
      const ok = await spawnEmu([
        "iso",
        seed,
        "-o",
        join(dir, "seed.iso"),
        "--label",
        "cidata",
        "--date",
        "2026-11-01T00:00:00Z",
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(
        ok.stdout,
        `wrote ${
          join(dir, "seed.iso")
        }: 56 KiB, 2 files, label cidata, dated 2026-11-01T00:00:00.000Z\n`,
      );
      assert.equal(
        new TextDecoder().decode(await isoinfoExtract(join(dir, "seed.iso"), "-R", "/user-data")),
        "#cloud-config\n",
      );

      const json = await spawnEmu(["iso", seed, "-o", join(dir, "seed2.iso"), "--json"]);
      assert.equal(json.code, 0);
      assert.deepEqual(JSON.parse(json.stdout), {
        path: join(dir, "seed2.iso"),
        bytes: 57344,
        sectors: 28,
        files: 2,
        directories: 1,
        label: "cidata",
        date: "1970-01-01T00:00:00.000Z",
      });

      const missing = await spawnEmu(["iso", join(dir, "nope"), "-o", join(dir, "x.iso")]);
      assert.equal(missing.code, 1);
      assert.equal(
        missing.stderr.split("\n")[0],
        `error[iso_invalid_input]: Cannot read ${join(dir, "nope")}: no such directory`,
      );
      const badDate = await spawnEmu(["iso", seed, "-o", join(dir, "x.iso"), "--date", "tomorrow"]);
      assert.equal(badDate.code, 2);
      const noOutput = await spawnEmu(["iso", seed]);
      assert.equal(noOutput.code, 2);
      assert.deepEqual(await listDir(dir), ["seed", "seed.iso", "seed2.iso"]);
    }),
);

Deno.test(
  "emu iso: a symlink out of DIR is refused (nothing written) unless --follow-symlinks; a link cycle always",
  needs(...ISO_READERS),
  () =>
    withTempDir(async (dir) => {
      if (!await requireIsoReaders()) return;
      const seed = join(dir, "seed");
      await Deno.mkdir(join(seed, "sub"), { recursive: true });
      await Deno.writeTextFile(join(seed, "user-data"), "#cloud-config\n");
      await Deno.writeTextFile(join(dir, "id_ed25519"), "PRIVATE KEY\n");
      await Deno.symlink("../user-data", join(seed, "sub", "inside")); // stays in DIR: fine
      await Deno.symlink(join(dir, "id_ed25519"), join(seed, "key"));
      const out = join(dir, "seed.iso");
      const refused = await spawnEmu(["iso", seed, "-o", out]);
      assert.equal(refused.code, 1);
      assert.equal(
        refused.stderr,
        `error[iso_invalid_input]: Cannot add ${
          join(seed, "key")
        } to the ISO image: it is a symbolic link to ${
          join(dir, "id_ed25519")
        }, outside ${seed}\n` +
          "hint: Copy the file into the directory, or pass --follow-symlinks if it really belongs on the image.\n",
      );
      assert.deepEqual(await listDir(dir), ["id_ed25519", "seed"], "nothing written");

      const followed = await spawnEmu(["iso", seed, "-o", out, "--follow-symlinks"]);
      assert.equal(followed.code, 0, followed.stderr);
      assert.equal(
        new TextDecoder().decode(await isoinfoExtract(out, "-R", "/key")),
        "PRIVATE KEY\n",
      );
      assert.equal(
        new TextDecoder().decode(await isoinfoExtract(out, "-R", "/sub/inside")),
        "#cloud-config\n",
      );

      await Deno.remove(join(seed, "key"));
      await Deno.symlink("..", join(seed, "sub", "loop"));
      const loop = await spawnEmu(["iso", seed, "-o", join(dir, "loop.iso"), "--follow-symlinks"]);
      assert.equal(loop.code, 1);
      assert.match(
        loop.stderr,
        /^error\[iso_invalid_input\]: Cannot add .*\/seed\/sub\/loop to the ISO image: it links back to .*\/seed, a directory that contains it\n/,
      );
    }),
);
