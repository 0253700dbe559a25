/**
 * emu's version, from one place: the `version` field of `deno.json`, which the release
 * workflow bumps and `deno compile` embeds.
 *
 * @module
 */
import denoConfig from "../deno.json" with { type: "json" };

/** emu's semantic version, e.g. `0.1.0`. */
export const VERSION: string = denoConfig.version;
