/**
 * How this emu was started, so the commands it suggests can be pasted as they are: the
 * installed binary (`emu`), a source checkout (`deno task emu`), or the README's way on a
 * machine without Deno (`npx -y deno@<version> task emu`). Pure.
 *
 * @module
 */

/** What {@linkcode invocation} looks at. */
export interface InvocationFacts {
  /** `Deno.execPath()`: the compiled emu, or the deno binary running main.ts. */
  execPath: string;
  env: Record<string, string | undefined>;
  /** The running Deno's version (`Deno.version.deno`). */
  denoVersion: string;
}

/**
 * The command prefix to suggest: `emu`, `deno task emu` or `npx -y deno@V task emu`.
 *
 * @example
 * ```ts
 * import { invocation } from "./invocation.ts";
 * const facts = { env: {}, denoVersion: "2.9.5" };
 * if (invocation({ ...facts, execPath: "/home/ada/.emu/bin/emu" }) !== "emu") throw new Error();
 * if (invocation({ ...facts, execPath: "/usr/bin/deno" }) !== "deno task emu") throw new Error();
 * if (invocation({ ...facts, execPath: "/root/.npm/_npx/1f/node_modules/deno/deno" }) !== "npx -y deno@2.9.5 task emu") throw new Error();
 * ```
 */
export function invocation(facts: InvocationFacts): string {
  const exe = facts.execPath.split(/[\\/]/).pop() ?? "";
  if (!/^deno(\.exe)?$/i.test(exe)) return "emu";
  const viaNpx = facts.env.npm_lifecycle_event === "npx" || /[\\/]_npx[\\/]/.test(facts.execPath);
  return viaNpx ? `npx -y deno@${facts.denoVersion} task emu` : "deno task emu";
}

/** {@linkcode invocation} for this process. */
export function thisInvocation(env: Record<string, string | undefined>): string {
  return invocation({ execPath: Deno.execPath(), env, denoVersion: Deno.version.deno });
}
