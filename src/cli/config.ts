/**
 * `emu config`: the profile and paths emu resolved, for humans or with `--json`.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import type { Profile } from "../config/profile.ts";
import { profileFor } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu config`. */
export function registerConfig(program: Command, io: CliIo): void {
  program
    .command("config")
    .description("print the resolved profile and paths")
    .addHelpText(
      "after",
      "\nThe profile is --config PATH (or EMU_CONFIG), else ./emu.json, else the built-in demo profile.",
    )
    .action(async (_options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const { profile, path } = await profileFor(settings, io.env);
      const paths = { ...settings.layout, runtime_dir: settings.runtimeDir };
      out.json({ profile_path: path, profile, paths });
      out.result(renderConfig(profile, path, paths));
    });
}

function renderConfig(
  profile: Profile,
  path: string | null,
  paths: Record<string, string>,
): string {
  const lines = [
    `profile      ${path ?? "built-in demo profile"}`,
    `name         ${profile.name}`,
    `image        ${profile.image.source} (version ${profile.image.version}${
      profile.image.public_key ? ", signed" : ""
    })`,
    `vm           ${profile.vm.memory_mib} MiB, ${profile.vm.cpus} vCPU${
      profile.vm.cpus === 1 ? "" : "s"
    }`,
  ];
  const ports = Object.entries(profile.ports);
  lines.push(`ports        ${ports.length ? "" : "none"}`.trimEnd());
  for (const [name, fwd] of ports) {
    lines.push(`  ${name.padEnd(10)} 127.0.0.1:${fwd.host} → guest ${fwd.guest}`);
  }
  lines.push(`health       ${profile.health.length ? "" : "none"}`.trimEnd());
  for (const h of profile.health) {
    lines.push(`  ${h.name.padEnd(10)} GET ${h.path} on ${h.port} → ${h.status}`);
  }
  const secrets = Object.entries(profile.secrets);
  lines.push(
    `secrets      ${secrets.length ? secrets.map(([n, k]) => `${n} (${k})`).join(", ") : "none"}`,
  );
  if (profile.rotate) {
    lines.push(`rotate       ${profile.rotate.command} (timeout ${profile.rotate.timeout_s} s)`);
  }
  const runtime = Object.keys(profile.runtime);
  if (runtime.length) lines.push(`runtime      ${runtime.join(", ")}`);
  lines.push("paths");
  for (const [name, value] of Object.entries(paths)) lines.push(`  ${name.padEnd(12)} ${value}`);
  return lines.join("\n");
}
