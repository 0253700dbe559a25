/**
 * emu's entry point: `deno run -A main.ts …`, or the compiled `emu` binary.
 *
 * @module
 */
import { processIo } from "./src/cli/io.ts";
import { runCli } from "./src/cli/run.ts";

if (import.meta.main) {
  // Everything emu and its children (QEMU, qemu-img) create is private to the user: run
  // disks hold the guest's copy of the rotated secrets.
  Deno.umask(0o077);
  Deno.exit(await runCli(Deno.args, processIo()));
}
