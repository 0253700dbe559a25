/**
 * `emu status`: each instance's state and health. Exit 0 only when running and healthy.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { Option } from "@commander-js/extra-typings";
import { validateInstanceName } from "../config/paths.ts";
import { EmuError } from "../errors.ts";
import { findInstance, listInstances } from "../vm/instance.ts";
import { type InstanceStatus, instanceStatus } from "../vm/status.ts";
import { profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import { ExitStatus } from "./exit.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu status`. */
export function registerStatus(program: Command, io: CliIo): void {
  program
    .command("status")
    .description("show instances: process, VM state, health checks, ports, uptime")
    .addOption(
      new Option("-n, --name <name>", "only this instance").argParser((v) =>
        validateInstanceName(v)
      ),
    )
    .addHelpText(
      "after",
      "\nExit code: 0 when the instance (or every instance) is running and healthy, 1 otherwise.",
    )
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile } = await profileFor(settings, io.env);
      let found = options.name
        ? [await findInstance(settings, options.name)]
        : await listInstances(settings);
      if (options.name && found[0].record === null) {
        throw new EmuError(
          "instance_not_found",
          `Cannot show instance ${options.name}: it does not exist`,
          { hint: "Start it with `emu start`." },
        );
      }
      found = found.filter((f) => f.record !== null);
      const statuses = await Promise.all(found.map((f) => instanceStatus(f, profile)));
      out.json(options.name ? statuses[0] : { instances: statuses });
      out.result(
        statuses.length
          ? statuses.map(render).join("\n\n")
          : "no instances (start one with `emu start`)",
      );
      if (statuses.length === 0 || !statuses.every((s) => s.healthy)) throw new ExitStatus(1);
    });
}

function render(s: InstanceStatus): string {
  const state = s.state === "running"
    ? (s.healthy ? "running, healthy" : `running, NOT healthy (VM ${s.vm_status ?? "unreachable"})`)
    : s.state === "suspended"
    ? "suspended (the next `emu start` resumes it, data and secrets kept)"
    : s.state === "crashed"
    ? "CRASHED: its QEMU is gone (run `emu start` to restart it)"
    : "stopped";
  const lines = [`${s.name}: ${state}`];
  if (s.pid) lines.push(`  pid ${s.pid}, up ${s.uptime_s} s, ${s.boot} boot`);
  if (s.image) {
    lines.push(
      `  image ${s.image.name} ${s.image.version}${
        s.snapshot ? `, snapshot ${s.snapshot}` : ", no snapshot"
      }`,
    );
  }
  for (const [name, p] of Object.entries(s.ports)) {
    lines.push(`  port ${name}: ${p.url} → guest ${p.guest}`);
  }
  for (const h of s.health) {
    lines.push(`  health ${h.name}: ${h.ok ? "ok" : `FAIL (${h.error})`} ${h.url}`);
  }
  return lines.join("\n");
}
