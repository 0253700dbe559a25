/**
 * emu's entry point: `deno run -A main.ts …`, or the compiled `emu` binary.
 *
 * @module
 */
import { VERSION } from "./src/version.ts";

if (import.meta.main) {
  if (Deno.args.length === 1 && (Deno.args[0] === "--version" || Deno.args[0] === "-V")) {
    // Scripts and install.sh ask this often: answer without loading the command tree.
    console.log(VERSION);
  } else {
    // Everything emu and its children (QEMU, qemu-img) create is private to the user: run
    // disks hold the guest's copy of the rotated secrets.
    Deno.umask(0o077);
    const { processIo } = await import("./src/cli/io.ts");
    const { runCli } = await import("./src/cli/run.ts");
    Deno.exit(await runCli(Deno.args, processIo()));
  }
}
