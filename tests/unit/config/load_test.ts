import assert from "node:assert/strict";
import { join } from "node:path";
import { loadProfile, MAX_PROFILE_BYTES, parseProfileText } from "../../../src/config/load.ts";
import { EmuError } from "../../../src/errors.ts";

Deno.test("parseProfileText reports JSON syntax errors with line and column", () => {
  assert.throws(() => parseProfileText('{\n  "name": "x",\n}', "/p/emu.json"), (err: unknown) => {
    assert.ok(err instanceof EmuError);
    assert.equal(err.code, "config_parse");
    assert.equal(
      err.message,
      "Cannot parse /p/emu.json: line 3, column 1: Expected double-quoted property name",
    );
    return true;
  });
});

Deno.test("parseProfileText wraps field errors in one line naming file and field", () => {
  assert.throws(
    () => parseProfileText('{"name":"x","image":{"source":"i"},"vm":{"cpus":0}}', "/p/emu.json"),
    {
      code: "config_invalid",
      message: "Cannot use /p/emu.json: vm.cpus: must be an integer from 1 to 64, got 0",
    },
  );
});

Deno.test("relative image sources resolve against the profile's directory", () => {
  const p = parseProfileText('{"name":"x","image":{"source":"../img"}}', "/a/b/emu.json");
  assert.equal(p.image.source, "/a/img");
  const remote = parseProfileText('{"name":"x","image":{"source":"github:o/r"}}', "/a/b/emu.json");
  assert.equal(remote.image.source, "github:o/r");
});

Deno.test("loadProfile: --config, then ./emu.json, then the built-in demo", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const builtin = await loadProfile({ cwd: dir, home: "/h" });
    assert.equal(builtin.path, null);
    assert.equal(builtin.profile.name, "demo");

    await Deno.writeTextFile(join(dir, "emu.json"), '{"name":"local","image":{"source":"img"}}');
    const local = await loadProfile({ cwd: dir, home: "/h" });
    assert.equal(local.path, join(dir, "emu.json"));
    assert.equal(local.profile.image.source, join(dir, "img"));

    await Deno.mkdir(join(dir, "other"));
    await Deno.writeTextFile(
      join(dir, "other", "p.json"),
      '{"name":"other","image":{"source":"img"}}',
    );
    const explicit = await loadProfile({ cwd: dir, home: "/h", configPath: "other/p.json" });
    assert.equal(explicit.profile.name, "other");
    assert.equal(explicit.profile.image.source, join(dir, "other", "img"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadProfile: a missing --config file is an error, not the demo profile", async () => {
  await assert.rejects(loadProfile({ cwd: "/", home: "/h", configPath: "/nonexistent/emu.json" }), {
    code: "config_not_found",
    message: "Cannot read profile /nonexistent/emu.json: no such file",
  });
});

Deno.test("loadProfile refuses an oversized or non-UTF-8 profile", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = join(dir, "big.json");
    await Deno.writeTextFile(big, " ".repeat(MAX_PROFILE_BYTES + 1));
    await assert.rejects(loadProfile({ cwd: dir, home: "/h", configPath: big }), {
      code: "config_invalid",
      message: `Cannot use ${big}: it is ${
        MAX_PROFILE_BYTES + 1
      } bytes, larger than the ${MAX_PROFILE_BYTES}-byte limit`,
    });
    const bin = join(dir, "bin.json");
    await Deno.writeFile(bin, new Uint8Array([0x7b, 0xff, 0x7d]));
    await assert.rejects(loadProfile({ cwd: dir, home: "/h", configPath: bin }), {
      code: "config_parse",
      message: `Cannot parse ${bin}: not valid UTF-8 text`,
    });
    await assert.rejects(loadProfile({ cwd: dir, home: "/h", configPath: dir }), {
      code: "config_not_found",
      message: `Cannot read profile ${dir}: not a regular file`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
