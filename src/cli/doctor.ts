/**
 * `emu doctor`: is this host ready to run emu, and if not, what to do.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import type { Check } from "../doctor/doctor.ts";
import { EmuError } from "../errors.ts";
import { profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";
import { ARCH_WORDS, parseArch } from "./_instance_options.ts";

const MARK = { ok: "ok  ", warn: "warn", fail: "FAIL" } as const;

/** Registers `emu doctor`. */
export function registerDoctor(program: Command, io: CliIo): void {
  program
    .command("doctor")
    .description("check QEMU, the accelerator, disk space, ports and directories")
    .option("--refresh", "probe QEMU and the accelerator again instead of using probe.json")
    .addOption(
      new Option("--arch <arch>", "guest architecture to check for (amd64 and arm64 are the same)")
        .choices(ARCH_WORDS).argParser(parseArch),
    )
    .addHelpText("after", "\nExit code: 0 when nothing failed (warnings allowed), 1 otherwise.")
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      if (!out.mode.json && !out.mode.quiet && options.refresh) {
        out.info("probing QEMU and the accelerator (runs a test guest)…");
      }
      const { runDoctor } = await import("../doctor/doctor.ts");
      const report = await runDoctor({
        settings,
        profile,
        env: io.env,
        refresh: options.refresh,
        guestArch: options.arch,
      });
      const failed = report.checks.filter((c) => c.status === "fail");
      out.json({
        ok: failed.length === 0,
        checks: report.checks,
        probe: report.probe ? { ...report.probe.result, from_cache: report.probe.fromCache } : null,
      });
      out.result(report.checks.map(render).join("\n"));
      if (failed.length > 0) {
        throw new EmuError(
          "doctor_failed",
          `Cannot run emu on this host yet: ${failed.length} check${
            failed.length === 1 ? "" : "s"
          } failed (${failed.map((c) => c.id).join(", ")})`,
          {
            hint: "Apply the fixes above, then run `emu doctor` again.",
          },
        );
      }
    });
}

function render(check: Check): string {
  const lines = [`${MARK[check.status]}  ${check.summary}`];
  for (const d of check.detail ?? []) lines.push(`      ${d}`);
  if (check.fix && check.status !== "ok") lines.push(`      fix: ${check.fix}`);
  return lines.join("\n");
}
