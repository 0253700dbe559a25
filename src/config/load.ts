/**
 * Finding, reading and validating the profile: `--config PATH`, else `emu.json` in the
 * working directory, else the built-in demo profile.
 *
 * @module
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import { EmuError } from "../errors.ts";
import { defaultProfileJson, localDemoImage } from "./default_profile.ts";
import { type Profile, ProfileError, validateProfile } from "./profile.ts";
import { exists } from "../exists.ts";

/** Largest `emu.json` emu reads; a profile is a few hundred bytes. */
export const MAX_PROFILE_BYTES = 1024 * 1024;

/** Name of the profile file looked up in the working directory. */
export const PROFILE_FILE_NAME = "emu.json";

/** A profile and where it came from. */
export interface LoadedProfile {
  profile: Profile;
  /** Absolute path of the file, or `null` for the built-in demo profile. */
  path: string | null;
}

/** Options of {@linkcode loadProfile}. */
export interface LoadProfileOptions {
  /** `--config` value (or `EMU_CONFIG`); relative to `cwd`. */
  configPath?: string;
  cwd: string;
  /** The resolved emu home (the built-in profile's image lives under it). */
  home: string;
  /**
   * Where the built-in demo profile pulls from when there is no local build of it
   * (`demoRelease()` of the release config), or `null`.
   */
  demoRelease?: { source: string; publicKey: string } | null;
}

/**
 * Loads the profile. Relative local image sources are resolved against the directory
 * of the file that names them, so a profile works from any working directory.
 */
export async function loadProfile(options: LoadProfileOptions): Promise<LoadedProfile> {
  let path: string;
  if (options.configPath !== undefined && options.configPath !== "") {
    path = resolve(options.cwd, options.configPath);
  } else {
    path = join(options.cwd, PROFILE_FILE_NAME);
    if (!(await isFile(path))) {
      // A local build (deno task demo) wins over the published demo release.
      const local = await exists(localDemoImage(options.home));
      const release = local ? null : options.demoRelease ?? null;
      return { profile: validateProfile(defaultProfileJson(options.home, release)), path: null };
    }
  }
  const text = await readProfileText(path);
  return { profile: parseProfileText(text, path), path };
}

/**
 * Parses and validates profile text read from `path` (used in messages and to resolve
 * relative image sources). Throws `config_parse` or `config_invalid`.
 */
export function parseProfileText(text: string, path: string): Profile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new EmuError("config_parse", `Cannot parse ${path}: ${jsonErrorDetail(err, text)}`, {
      hint: "Fix the JSON syntax (emu.json is plain JSON: no comments, no trailing commas).",
    });
  }
  let profile: Profile;
  try {
    profile = validateProfile(raw);
  } catch (err) {
    if (err instanceof ProfileError) {
      const problems = err.problems.map((p) => `${p.field}: ${p.problem}`);
      throw new EmuError(
        "config_invalid",
        problems.length === 1
          ? `Cannot use ${path}: ${problems[0]}`
          : `Cannot use ${path}: ${problems.length} problems\n  ${problems.join("\n  ")}`,
        {
          hint: problems.length === 1
            ? "Fix that field; `emu config` prints the profile emu resolved."
            : "Fix those fields; `emu config` prints the profile emu resolved.",
        },
      );
    }
    throw err;
  }
  profile.image.source = resolveLocalSource(profile.image.source, dirname(path));
  return profile;
}

/** True for sources that name a remote location rather than a local path. */
export function isRemoteSource(source: string): boolean {
  return /^(https?:|github:|file:)/.test(source);
}

function resolveLocalSource(source: string, baseDir: string): string {
  if (isRemoteSource(source) || isAbsolute(source)) return source;
  return resolve(baseDir, source);
}

async function readProfileText(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new EmuError("config_not_found", `Cannot read profile ${path}: no such file`, {
        hint:
          "Check the --config path, or run without --config to use ./emu.json or the built-in demo profile.",
      });
    }
    throw new EmuError(
      "config_not_found",
      `Cannot read profile ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  try {
    const info = await file.stat();
    if (!info.isFile) {
      throw new EmuError("config_not_found", `Cannot read profile ${path}: not a regular file`);
    }
    if (info.size > MAX_PROFILE_BYTES) {
      throw new EmuError(
        "config_invalid",
        `Cannot use ${path}: it is ${info.size} bytes, larger than the ${MAX_PROFILE_BYTES}-byte limit`,
        { hint: "A profile is a small JSON file; check that --config names the right file." },
      );
    }
    const bytes = new Uint8Array(info.size);
    let filled = 0;
    while (filled < bytes.length) {
      const n = await file.read(bytes.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, filled));
    } catch {
      throw new EmuError("config_parse", `Cannot parse ${path}: not valid UTF-8 text`);
    }
  } finally {
    file.close();
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Turns a JSON.parse error into "line L, column C: …" when V8 gives a position. */
function jsonErrorDetail(err: unknown, text: string): string {
  const message = (err as Error).message;
  const match = /position (\d+)/.exec(message);
  if (match === null) return message;
  const offset = Number(match[1]);
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `line ${line}, column ${column}: ${message.replace(/ in JSON at position \d+.*$/, "")}`;
}
