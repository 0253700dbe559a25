/**
 * A plain description of the command tree, from which the shell completion scripts are
 * generated. Kept free of commander types so the generators are pure and table-tested.
 *
 * @module
 */

/** What kind of value an option or argument takes, for the shell to complete. */
export type ValueKind = "file" | "dir" | "none" | "any";

/** One option. */
export interface OptionSpec {
  /** Every spelling: `["-v", "--verbose"]`. */
  flags: string[];
  description: string;
  /** `undefined` when the option takes no value. */
  value?: { kind: ValueKind; choices?: string[] };
}

/** One positional argument. */
export interface ArgumentSpec {
  name: string;
  choices?: string[];
  variadic: boolean;
}

/** One command and its subcommands. */
export interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  arguments: ArgumentSpec[];
  commands: CommandSpec[];
}

/** Every command of the tree with its path of names (`["emu", "images", "ls"]`), depth first. */
export function walkCommands(root: CommandSpec): { path: string[]; command: CommandSpec }[] {
  const out: { path: string[]; command: CommandSpec }[] = [];
  const visit = (command: CommandSpec, path: string[]) => {
    out.push({ path, command });
    for (const child of command.commands) visit(child, [...path, child.name]);
  };
  visit(root, [root.name]);
  return out;
}

/** Options that take a value, by spelling, for the whole tree. */
export function valueOptionFlags(command: CommandSpec): string[] {
  return command.options.filter((o) => o.value !== undefined).flatMap((o) => o.flags);
}

/**
 * Root options that subcommands accept too (commander reads program options anywhere
 * on the line): everything but help, which each command has itself, and the version.
 */
export function inheritedOptions(root: CommandSpec): OptionSpec[] {
  return root.options.filter((o) => !o.flags.includes("--help") && !o.flags.includes("--version"));
}
