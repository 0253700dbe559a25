/**
 * `emu iso DIR -o OUT`: a portable `cloud-localds`/`mkisofs` replacement that writes an
 * ISO 9660 + Joliet + Rock Ridge image of a directory.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { EmuError } from "../errors.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";
import { resolve } from "node:path";

/** Registers `emu iso`. */
export function registerIso(program: Command, io: CliIo): void {
  program
    .command("iso")
    .description("write an ISO 9660 + Joliet + Rock Ridge image of a directory")
    .argument("<dir>", "directory to put on the image")
    .requiredOption("-o, --output <file>", "image file to write (replaced atomically)")
    .option(
      "--label <label>",
      "volume label: letters, digits, _ (Joliet keeps the first 16)",
      "cidata",
    )
    .option(
      "--date <iso8601>",
      "timestamp of every entry (default: $SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z)",
    )
    .option("--follow-symlinks", "also follow symbolic links that lead out of DIR")
    .addHelpText(
      "after",
      "\nExample (a cloud-init NoCloud seed):\n  emu iso seed/ -o seed.iso --label cidata\n\n" +
        "The same input, label and date always give the same bytes.",
    )
    .action(async (dir, options, cmd) => {
      const { entriesFromDirectory, writeIsoFile } = await import("../iso/mod.ts");
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const date = options.date === undefined ? undefined : parseDate(options.date);
      const source = resolve(settings.cwd, dir);
      const output = resolve(settings.cwd, options.output);
      const entries = await entriesFromDirectory(source, {
        followSymlinks: options.followSymlinks === true,
      });
      const result = await writeIsoFile(entries, output, {
        label: options.label,
        date,
        env: io.env,
      });
      out.json({
        path: output,
        bytes: result.bytes,
        sectors: result.sectors,
        files: result.files,
        directories: result.directories,
        label: options.label,
        date: result.date.toISOString(),
      });
      out.result(
        `wrote ${output}: ${formatBytes(result.bytes)}, ${result.files} file${
          result.files === 1 ? "" : "s"
        }, ` +
          `label ${options.label}, dated ${result.date.toISOString()}`,
      );
    });
}

function parseDate(text: string): Date {
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(date.getTime())) {
    throw new EmuError("usage", `Cannot use --date "${text}": not an ISO 8601 date`, {
      hint: "Use a date such as 2026-11-01 or 2026-11-01T12:00:00Z.",
    });
  }
  return date;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
