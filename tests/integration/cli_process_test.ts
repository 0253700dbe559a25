/** The real `emu` process: exit codes, streams, and completions loaded in real shells. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

Deno.test("process: --help exits 0 on stdout, unknown command exits 2 on stderr", async () => {
  const help = await spawnEmu(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: emu /);
  const bad = await spawnEmu(["no-such-command"]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.match(bad.stderr, /^error\[usage\]: Unknown command 'no-such-command'\n/);
});

Deno.test("process: invalid emu.json exits 1 naming the field; config --json is valid JSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "emu.json"),
      JSON.stringify({ name: "x", image: { source: "i" }, vm: { cpus: 0 } }),
    );
    const bad = await spawnEmu(["config"], { cwd: dir, env: { EMU_HOME: dir } });
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr.split("\n")[0],
      `error[config_invalid]: Cannot use ${
        join(dir, "emu.json")
      }: vm.cpus: must be an integer from 1 to 64, got 0`,
    );
    await Deno.writeTextFile(
      join(dir, "emu.json"),
      JSON.stringify({ name: "x", image: { source: "i" } }),
    );
    const good = await spawnEmu(["config", "--json"], { cwd: dir, env: { EMU_HOME: dir } });
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.stdout).profile.image.source, join(dir, "i"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Completes `words` (the last one being completed) with emu's bash script loaded in real bash. */
async function bashComplete(script: string, words: string[]): Promise<string[]> {
  const program = `source /dev/stdin <<'EMU_EOF'\n${script}\nEMU_EOF\n` +
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _emu; ` +
    `printf '%s\\n' "\${COMPREPLY[@]}"`;
  const out = await new Deno.Command("bash", {
    args: ["--norc", "--noprofile", "-c", program],
    stdin: "null",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "");
}

Deno.test(
  "completions bash: loads in bash and completes emu st<TAB>, c<TAB>, options and choices",
  needs(TOOLS.fish, TOOLS.zsh),
  async () => {
    const r = await spawnEmu(["completions", "bash"]);
    assert.equal(r.code, 0);
    const help = await spawnEmu(["--help"]);
    // Whatever commands exist starting with "st", bash offers exactly those.
    const stCommands = [...help.stdout.matchAll(/^ {2}(st\S*)/gm)].map((m) => m[1]);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "st"]), stCommands);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "c"]), [
      "capture",
      "checkpoint",
      "config",
      "completions",
    ]);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "checkpoint", ""]), [
      "save",
      "restore",
      "ls",
      "rm",
    ]);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "completions", ""]), [
      "bash",
      "zsh",
      "fish",
    ]);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "--home", "/tmp", "conf"]), ["config"]);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "config", "--j"]), ["--json"]);
    assert.deepEqual(await bashComplete(r.stdout, ["emu", "help", "comp"]), ["completions"]);
  },
);

Deno.test(
  "completions fish: real fish completes commands and choices",
  needs(TOOLS.fish),
  async () => {
    if (!await requireTool("fish", "fish")) return;
    const r = await spawnEmu(["completions", "fish"]);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(join(dir, "emu.fish"), r.stdout);
      const program =
        `source ${dir}/emu.fish; complete -C 'emu c'; echo ==; complete -C 'emu completions '`;
      const out = await new Deno.Command("fish", {
        args: ["--no-config", "-c", program],
        env: { HOME: dir },
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.equal(
        new TextDecoder().decode(out.stdout),
        "capture\tcapture the RAM snapshot that `emu start` resumes (cold boot, wait healthy, save)\n" +
          "checkpoint\tsave a running stack under a name and return to it in about a second (for test suites)\n" +
          "completions\tprint a shell completion script\nconfig\tprint the resolved profile and paths\n==\nbash\nfish\nzsh\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "completions zsh: parses in real zsh and registers with compinit",
  needs(TOOLS.zsh),
  async () => {
    if (!await requireTool("zsh", "zsh")) return;
    const r = await spawnEmu(["completions", "zsh"]);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(join(dir, "_emu"), r.stdout);
      const program =
        `fpath=(${dir} $fpath); autoload -U compinit; compinit -u -d ${dir}/zcompdump; print -r -- $_comps[emu]`;
      const out = await new Deno.Command("zsh", { args: ["-f", "-c", program], env: { HOME: dir } })
        .output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      assert.equal(new TextDecoder().decode(out.stdout), "_emu\n");
      const syntax = await new Deno.Command("zsh", { args: ["-n", join(dir, "_emu")] }).output();
      assert.ok(syntax.success, new TextDecoder().decode(syntax.stderr));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
