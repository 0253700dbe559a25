import assert from "node:assert/strict";
import { join } from "node:path";
import { VERSION } from "../../../src/version.ts";
import { runEmu } from "../../_helpers/cli.ts";

Deno.test("--version prints the version from deno.json and exits 0", async () => {
  const denoJson = JSON.parse(
    await Deno.readTextFile(new URL("../../../deno.json", import.meta.url)),
  );
  assert.equal(VERSION, denoJson.version);
  assert.deepEqual(await runEmu(["--version"]), { code: 0, stdout: `${VERSION}\n`, stderr: "" });
  assert.deepEqual(await runEmu(["-V"]), { code: 0, stdout: `${VERSION}\n`, stderr: "" });
});

Deno.test("--help lists the global options, the commands and the exit codes", async () => {
  const r = await runEmu(["--help"]);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  for (
    const text of [
      "--home <dir>",
      "--config <file>",
      "--json",
      "-v, --verbose",
      "-q, --quiet",
      "config ",
      "completions [options] <shell>",
      "Exit codes: 0 ok, 1 failure, 2 usage error.",
    ]
  ) {
    assert.ok(r.stdout.includes(text), `help lacks ${text}`);
  }
});

Deno.test("emu with no command prints help on stderr and exits 2", async () => {
  const r = await runEmu([]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^Usage: emu \[options\] \[command\]/);
});

Deno.test("usage errors: one error line, a hint, exit 2", async () => {
  const unknown = await runEmu(["confg"]);
  assert.equal(unknown.code, 2);
  assert.equal(
    unknown.stderr,
    "error[usage]: Unknown command 'confg' (did you mean config?)\nhint: Run `emu --help` (or `emu help COMMAND`) for usage.\n",
  );
  const option = await runEmu(["config", "--frobnicate"]);
  assert.equal(option.code, 2);
  assert.match(option.stderr, /^error\[usage\]: Unknown option '--frobnicate'\n/);
  const both = await runEmu(["-q", "-v", "config"]);
  assert.equal(both.code, 2);
  assert.match(
    both.stderr,
    /^error\[usage\]: Option '-v, --verbose' cannot be used with option '-q, --quiet'\n/,
  );
});

Deno.test("emu config prints the built-in demo profile and paths", async () => {
  const r = await runEmu(["config"], { env: { EMU_HOME: "/srv/emu" } });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  assert.ok(
    r.stdout.startsWith(
      "profile      built-in demo profile\nname         demo\nimage        /srv/emu/demo/image (version latest)\n",
    ),
    r.stdout,
  );
  assert.ok(r.stdout.includes("\n  api        127.0.0.1:26700 → guest 8080\n"), r.stdout);
  assert.ok(r.stdout.endsWith("\n  runtime_dir  /tmp/emu-1000\n"), r.stdout);
});

Deno.test("emu config --json is exactly the resolved profile and paths", async () => {
  const r = await runEmu(["config", "--json", "--home", "/h"], {
    env: { XDG_RUNTIME_DIR: "/run/user/1000" },
  });
  assert.equal(r.code, 0);
  const out = JSON.parse(r.stdout);
  assert.equal(out.profile_path, null);
  assert.equal(out.profile.name, "demo");
  assert.deepEqual(out.paths, {
    home: "/h",
    images: "/h/images",
    snapshots: "/h/snapshots",
    instances: "/h/instances",
    downloads: "/h/downloads",
    probe: "/h/probe.json",
    releases: "/h/releases-seen.json",
    runtime_dir: "/run/user/1000/emu",
  });
});

Deno.test("global options work after the command too", async () => {
  const r = await runEmu(["config", "--json"], { env: { EMU_HOME: "/e" } });
  assert.equal(JSON.parse(r.stdout).paths.home, "/e");
});

/** Writes `content` as emu.json in a temp dir and runs `emu config` there. */
async function configWith(content: string, args: string[] = []) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "emu.json"), content);
    const before = await Deno.readTextFile(join(dir, "emu.json"));
    const result = await runEmu(["config", ...args], { cwd: dir });
    assert.equal(
      await Deno.readTextFile(join(dir, "emu.json")),
      before,
      "emu.json must be left as it was",
    );
    return { ...result, path: join(dir, "emu.json") };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const BASE = { name: "shop", image: { source: "img" } };

Deno.test("invalid emu.json: wrong type → one line naming the field, exit 1", async () => {
  const r = await configWith(JSON.stringify({ ...BASE, vm: { memory_mib: "lots" } }));
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    `error[config_invalid]: Cannot use ${r.path}: vm.memory_mib: must be an integer from 128 to 1048576, got "lots"\n` +
      "hint: Fix that field; `emu config` prints the profile emu resolved.\n",
  );
});

Deno.test("invalid emu.json: unknown field → names it and suggests the right one, exit 1", async () => {
  const r = await configWith(JSON.stringify({ ...BASE, secret: {} }));
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr.split("\n")[0],
    `error[config_invalid]: Cannot use ${r.path}: secret: unknown field (did you mean "secrets"?); allowed here: name, image, vm, ports, health, secrets, rotate, runtime`,
  );
});

Deno.test("invalid emu.json: bad port → names the field, exit 1", async () => {
  const r = await configWith(
    JSON.stringify({ ...BASE, ports: { api: { guest: 8080, host: 65536 } } }),
  );
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr.split("\n")[0],
    `error[config_invalid]: Cannot use ${r.path}: ports.api.host: must be a TCP port (an integer from 1 to 65535), got 65536`,
  );
});

Deno.test("invalid emu.json: duplicate host port → names both fields, exit 1", async () => {
  const ports = { api: { guest: 8080, host: 26700 }, db: { guest: 5432, host: 26700 } };
  const r = await configWith(JSON.stringify({ ...BASE, ports }));
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr.split("\n")[0],
    `error[config_invalid]: Cannot use ${r.path}: ports.db.host: host port 26700 is already used by ports.api.host`,
  );
});

Deno.test("invalid emu.json: broken JSON → line and column, exit 1; --json adds an error object", async () => {
  const r = await configWith('{"name": "x",,}', ["--json"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error\[config_parse\]: Cannot parse .*emu\.json: line 1, column 14: /);
  const out = JSON.parse(r.stdout);
  assert.equal(out.error.code, "config_parse");
  assert.equal(
    out.error.hint,
    "Fix the JSON syntax (emu.json is plain JSON: no comments, no trailing commas).",
  );
});

Deno.test("errors show no stack trace unless --verbose", async () => {
  const quiet = await runEmu(["config", "--config", "/nonexistent.json"]);
  assert.equal(quiet.code, 1);
  assert.ok(!quiet.stderr.includes("    at "), quiet.stderr);
  const verbose = await runEmu(["config", "--config", "/nonexistent.json", "-v"]);
  assert.equal(verbose.code, 1);
  assert.ok(verbose.stderr.includes("    at "), verbose.stderr);
});

Deno.test("colour only on a terminal, and never with NO_COLOR", async () => {
  const args = ["config", "--config", "/nonexistent.json"];
  assert.ok(
    (await runEmu(args, { terminal: true })).stderr.startsWith(
      "\x1b[31;1merror[config_not_found]:\x1b[0m",
    ),
  );
  assert.ok(
    (await runEmu(args, { terminal: true, env: { NO_COLOR: "1" } })).stderr.startsWith(
      "error[config_not_found]:",
    ),
  );
  assert.ok(
    (await runEmu(args, { terminal: false })).stderr.startsWith("error[config_not_found]:"),
  );
});
