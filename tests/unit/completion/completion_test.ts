import assert from "node:assert/strict";
import { bashCompletion } from "../../../src/completion/bash.ts";
import { fishCompletion } from "../../../src/completion/fish.ts";
import type { CommandSpec } from "../../../src/completion/tree.ts";
import { walkCommands } from "../../../src/completion/tree.ts";
import { zshCompletion } from "../../../src/completion/zsh.ts";

const TREE: CommandSpec = {
  name: "emu",
  description: "root",
  options: [
    { flags: ["--home"], description: "home [dir]", value: { kind: "dir" } },
    { flags: ["-q", "--quiet"], description: "quiet: yes" },
    { flags: ["-V", "--version"], description: "version" },
    { flags: ["-h", "--help"], description: "help" },
  ],
  arguments: [],
  commands: [
    {
      name: "start",
      description: "start it",
      options: [{ flags: ["--name"], description: "n", value: { kind: "any" } }],
      arguments: [],
      commands: [],
    },
    {
      name: "images",
      description: "the cache",
      options: [],
      arguments: [],
      commands: [{ name: "ls", description: "list", options: [], arguments: [], commands: [] }],
    },
    {
      name: "completions",
      description: "c",
      options: [],
      arguments: [{ name: "shell", variadic: false, choices: ["bash", "zsh"] }],
      commands: [],
    },
  ],
};

Deno.test("walkCommands lists every command with its path, depth first", () => {
  assert.deepEqual(walkCommands(TREE).map((e) => e.path.join(" ")), [
    "emu",
    "emu start",
    "emu images",
    "emu images ls",
    "emu completions",
  ]);
});

Deno.test("bash script tables list subcommands, options and choices per path", () => {
  const script = bashCompletion(TREE);
  assert.ok(script.includes(`    'emu') echo 'start images completions' ;;`));
  assert.ok(script.includes(`    'emu images') echo 'ls' ;;`));
  assert.ok(
    script.includes(`    'emu start') echo '--name --home -q --quiet' ;;`),
    "subcommands inherit globals but not --version/--help twice",
  );
  assert.ok(script.includes(`    'emu completions') echo 'bash zsh' ;;`));
  assert.ok(script.includes(`    --home) COMPREPLY=($(compgen -d -- "$2")) ;;`));
  assert.ok(script.endsWith("complete -F _emu emu\n"));
});

Deno.test("zsh script escapes descriptions and dispatches to each subcommand", () => {
  const script = zshCompletion(TREE);
  assert.ok(script.startsWith("#compdef emu\n"));
  assert.ok(script.includes(`'--home[home \\[dir\\]]:value:_files -/'`));
  assert.ok(script.includes(`'(-q --quiet)'{-q,--quiet}'[quiet\\: yes]'`));
  assert.ok(script.includes("        images) _emu_images && ret=0 ;;"));
  assert.ok(script.includes("_emu_images_ls() {"));
  assert.ok(script.includes(`'1:shell:(bash zsh)'`));
});

Deno.test("fish script conditions each completion on the typed command path", () => {
  const script = fishCompletion(TREE);
  assert.ok(
    script.includes(
      `complete -c emu -n 'test (__emu_path) = \\'emu images\\'' -f -a 'ls' -d 'list'`,
    ),
  );
  assert.ok(
    script.includes(
      `complete -c emu -l home -x -a "(__fish_complete_directories)" -d 'home [dir]'`,
    ),
  );
  assert.ok(script.includes(`            case '--home' '--name'\n                set skip 1`));
});
