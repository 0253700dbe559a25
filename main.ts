/**
 * emu's entry point: `deno run -A main.ts …`, or the compiled `emu` binary.
 *
 * @module
 */
import { processIo } from "./src/cli/io.ts";
import { runCli } from "./src/cli/run.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args, processIo()));
}
