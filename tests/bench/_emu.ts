/**
 * The benches' way to run emu: the real `emu` process (`deno run main.ts`) with a profile
 * and its own home and socket directory; stdout back, stderr in the error.
 */
import { join } from "node:path";
import { emuArgs } from "../_helpers/cli.ts";

/** Runs `emu --config <profile> args…` with `EMU_HOME=home`; returns its stdout. */
export async function runEmu(profile: string, home: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: emuArgs(["--config", profile, ...args]),
    env: { EMU_HOME: home, EMU_RUNTIME_DIR: join(home, "run"), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}
