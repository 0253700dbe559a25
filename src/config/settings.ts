/**
 * The resolved global settings every command starts from: home, runtime directory and
 * profile path, from flags first, then environment, then defaults.
 *
 * @module
 */
import {
  type HomeLayout,
  homeLayout,
  type PathEnv,
  resolveHome,
  resolveRuntimeDir,
} from "./paths.ts";

/** Environment variables emu reads for its settings. */
export interface SettingsEnv extends PathEnv {
  EMU_CONFIG?: string;
}

/** The global flags that affect settings. */
export interface SettingsFlags {
  home?: string;
  config?: string;
}

/** Process facts settings depend on. */
export interface ProcessFacts {
  cwd: string;
  uid: number | null;
  tmpDir: string;
}

/** Resolved settings. */
export interface Settings {
  home: string;
  layout: HomeLayout;
  runtimeDir: string;
  /** Profile path from `--config` or `EMU_CONFIG`, unresolved; absent means look up `./emu.json`. */
  configPath?: string;
  cwd: string;
}

/**
 * Resolves settings; pure.
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./settings.ts";
 * const s = resolveSettings({}, { EMU_HOME: "/srv/emu" }, { cwd: "/", uid: 0, tmpDir: "/tmp" });
 * if (s.layout.images !== "/srv/emu/images") throw new Error(s.layout.images);
 * ```
 */
export function resolveSettings(
  flags: SettingsFlags,
  env: SettingsEnv,
  facts: ProcessFacts,
): Settings {
  const home = resolveHome({ flag: flags.home, env, cwd: facts.cwd });
  const configPath = flags.config ?? (env.EMU_CONFIG === "" ? undefined : env.EMU_CONFIG);
  return {
    home,
    layout: homeLayout(home),
    runtimeDir: resolveRuntimeDir({ env, uid: facts.uid, tmpDir: facts.tmpDir }),
    ...(configPath === undefined ? {} : { configPath }),
    cwd: facts.cwd,
  };
}
