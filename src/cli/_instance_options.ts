/**
 * Options shared by the instance commands, and loading what they need.
 *
 * @module
 */
import { Option } from "@commander-js/extra-typings";
import { type LoadedProfile, loadProfile } from "../config/load.ts";
import { validateInstanceName } from "../config/paths.ts";
import type { Profile } from "../config/profile.ts";
import type { Settings } from "../config/settings.ts";
import { isGithubSource } from "../artifact/source_kind.ts";
import { demoRelease, releaseConfig } from "../artifact/release_config.ts";
import { isManifestSource, isPullableSource } from "../vm/image_source.ts";
import { EmuError } from "../errors.ts";
import type { Arch } from "../qemu/cpu_model.ts";
import { normalizeArch } from "../qemu/host.ts";

/** `--name N` (default `default`). */
export function nameOption() {
  return new Option("-n, --name <name>", "instance name").default("default").argParser((v) =>
    validateInstanceName(v)
  );
}

/** `--port NAME=HOSTPORT` (repeatable): host port overrides for `start` and `run`. */
export function portOption() {
  return new Option(
    "--port <name=hostport>",
    "use another host port for a profile port (repeatable)",
  )
    .argParser(collectPort).default({} as Record<string, number>);
}

/** `--timeout SECONDS` (default 300): how long the guest may take to become healthy. */
export function healthTimeoutOption() {
  return new Option("--timeout <seconds>", "how long the guest may take to become healthy")
    .argParser(parseSeconds).default(300);
}

/**
 * The profile for the current settings: `--config`, else `./emu.json`, else the built-in
 * demo profile (a local build, else the demo release this emu knows of).
 */
export async function profileFor(
  settings: Settings,
  env: Record<string, string | undefined>,
): Promise<LoadedProfile> {
  return await loadProfile({
    configPath: settings.configPath,
    cwd: settings.cwd,
    home: settings.home,
    demoRelease: demoRelease(await releaseConfig(env)),
  });
}

/** Parses one `--port NAME=HOSTPORT` and adds it to the map. */
export function collectPort(
  value: string,
  previous: Record<string, number> = {},
): Record<string, number> {
  const match = /^([a-z][a-z0-9_]*)=(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : 0;
  if (!match || port < 1 || port > 65535) {
    throw new EmuError(
      "usage",
      `Cannot use --port ${value}: expected NAME=HOSTPORT, e.g. api=36700`,
    );
  }
  return { ...previous, [match[1]]: port };
}

/** Parses `--timeout SECONDS`. */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new EmuError("usage", `Cannot use --timeout ${value}: expected a number of seconds`);
  }
  return n;
}

/**
 * The release source `emu list-releases` reads: `--source`, else the profile's image
 * source, when it is a release manifest or `github:OWNER/REPO`.
 *
 * @throws {EmuError} `usage` otherwise.
 */
export function releaseSource(profile: Profile, override: string | undefined): string {
  return sourceFor(
    profile,
    override,
    "list releases of",
    (s) => isManifestSource(s) || isGithubSource(s),
    "a release manifest (a URL or a .json file) or github:OWNER/REPO",
  );
}

/**
 * What `emu pull` fetches: `--source`, else the profile's image source, when it is a
 * release manifest or a plain qcow2 file or URL.
 *
 * @throws {EmuError} `usage` otherwise.
 */
export function pullableSource(profile: Profile, override: string | undefined): string {
  return sourceFor(
    profile,
    override,
    "pull",
    isPullableSource,
    "a release manifest, a qcow2 file or URL, or github:OWNER/REPO",
  );
}

function sourceFor(
  profile: Profile,
  override: string | undefined,
  action: string,
  accepts: (source: string) => boolean,
  what: string,
): string {
  const source = override ?? profile.image.source;
  if (!accepts(source)) {
    throw new EmuError("usage", `Cannot ${action} ${source}: it is not ${what}`, {
      hint: "Local image directories need no pull: `emu start` uses them in place.",
    });
  }
  return source;
}

/** A parser for a positive whole-number option value, naming `flag` in its error. */
export function positiveInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) {
      throw new EmuError("usage", `Cannot use ${flag} ${value}: expected a positive whole number`);
    }
    return n;
  };
}

/** The words `--arch` takes (completions offer them). */
export const ARCH_WORDS = ["x86_64", "aarch64", "amd64", "arm64"] as const;

/** `--arch`: x86_64 (or amd64) and aarch64 (or arm64), as emu names them. */
export function parseArch(value: string): Arch {
  const arch = normalizeArch(value);
  if (arch === null) {
    throw new EmuError(
      "usage",
      `Cannot use --arch ${value}: expected x86_64 (amd64) or aarch64 (arm64)`,
    );
  }
  return arch;
}
