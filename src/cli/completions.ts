/**
 * `emu completions bash|zsh|fish`: completion scripts generated from the live command
 * tree, so they never drift from the commands emu really has.
 *
 * @module
 */
import { Argument, type Command } from "@commander-js/extra-typings";
import { bashCompletion } from "../completion/bash.ts";
import { fishCompletion } from "../completion/fish.ts";
import type { CommandSpec, OptionSpec, ValueKind } from "../completion/tree.ts";
import { zshCompletion } from "../completion/zsh.ts";
import type { CliIo } from "./io.ts";

const SHELLS = ["bash", "zsh", "fish"] as const;

/** Registers `emu completions`. */
export function registerCompletions(program: Command, io: CliIo): void {
  program
    .command("completions")
    .description("print a shell completion script")
    .addArgument(new Argument("<shell>", "the shell to complete for").choices(SHELLS))
    .addHelpText(
      "after",
      "\nLoad it:\n" +
        "  bash  source <(emu completions bash)        (or save it in ~/.local/share/bash-completion/completions/emu)\n" +
        '  zsh   emu completions zsh > "${fpath[1]}/_emu"\n' +
        "  fish  emu completions fish > ~/.config/fish/completions/emu.fish",
    )
    .action((shell) => {
      const tree = describeCommand(program);
      const render = { bash: bashCompletion, zsh: zshCompletion, fish: fishCompletion }[shell];
      io.stdout(render(tree));
    });
}

type AnyCommand = {
  name(): string;
  description(): string;
  readonly commands: readonly AnyCommand[];
  readonly options: readonly {
    flags: string;
    long?: string;
    short?: string;
    description: string;
    required: boolean;
    optional: boolean;
    hidden: boolean;
    argChoices?: string[];
  }[];
  readonly registeredArguments: readonly {
    name(): string;
    variadic: boolean;
    argChoices?: string[];
  }[];
};

/** The command tree of a commander program, with help options and the help command added. */
export function describeCommand(command: Command): CommandSpec {
  const root = command as unknown as AnyCommand;
  return describe(root, true, new Set(root.options.map((o) => o.long ?? o.short ?? "")));
}

/** Subcommands repeat the global options; the completion tree lists them once, on the root. */
function describe(command: AnyCommand, isRoot: boolean, globalFlags: Set<string>): CommandSpec {
  const own = isRoot
    ? command.options
    : command.options.filter((o) => !globalFlags.has(o.long ?? o.short ?? ""));
  const options: OptionSpec[] = own.filter((o) => !o.hidden).map((o) => {
    const flags = [o.short, o.long].filter((f): f is string => f !== undefined);
    const spec: OptionSpec = { flags, description: o.description };
    if (o.required || o.optional) {
      spec.value = { kind: valueKind(o.flags), ...(o.argChoices ? { choices: o.argChoices } : {}) };
    }
    return spec;
  });
  options.push({ flags: ["-h", "--help"], description: "show help for a command" });
  const commands = command.commands.map((c) => describe(c, false, globalFlags));
  if (isRoot && commands.length > 0) {
    commands.push({
      name: "help",
      description: "show help for a command",
      options: [],
      arguments: [{ name: "command", variadic: false, choices: commands.map((c) => c.name) }],
      commands: [],
    });
  }
  return {
    name: command.name(),
    description: command.description().split("\n")[0],
    options,
    arguments: command.registeredArguments.map((a) => ({
      name: a.name(),
      variadic: a.variadic,
      ...(a.argChoices ? { choices: a.argChoices } : {}),
    })),
    commands,
  };
}

function valueKind(flags: string): ValueKind {
  if (/<dir>|\[dir\]/.test(flags)) return "dir";
  if (/<(file|path)>|\[(file|path)\]/.test(flags)) return "file";
  return "any";
}
