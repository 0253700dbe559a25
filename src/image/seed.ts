/**
 * The NoCloud seed (docs/architecture.md, «Guest contract and image build»): an ISO labelled
 * `cidata` holding `user-data`, `meta-data` and every other file of the user-data directory
 * (scripts the user-data runs from the mounted seed), written with emu's own ISO writer.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { entriesFromDirectory, type IsoEntry, writeIsoFile } from "../iso/mod.ts";

/** The volume label cloud-init's NoCloud datasource looks for. */
export const SEED_LABEL = "cidata";

/**
 * `meta-data` for a build: a fresh instance id (so cloud-init runs its per-instance
 * modules) and the hostname.
 *
 * @example
 * ```ts
 * import { metaData } from "./seed.ts";
 * if (metaData("emu-build-1", "demo") !== "instance-id: emu-build-1\nlocal-hostname: demo\n") throw new Error();
 * ```
 */
export function metaData(instanceId: string, hostname: string): string {
  return `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n`;
}

/** The first line a cloud-init user-data file may start with (config, script, MIME, include). */
export function userDataKind(text: string): string | null {
  const first = text.split("\n", 1)[0].trim();
  if (first === "#cloud-config") return "cloud-config";
  if (first.startsWith("#!")) return "script";
  if (first.startsWith("#include")) return "include";
  if (/^Content-Type:\s*multipart\//i.test(first) || /^MIME-Version:/i.test(first)) {
    return "mime";
  }
  return null;
}

function invalid(dir: string, problem: string): EmuError {
  return new EmuError("image_build_input", `Cannot use user-data directory ${dir}: ${problem}`, {
    hint:
      "Point --user-data at a directory with a `user-data` file starting with #cloud-config (see cloud-init/demo/).",
  });
}

/**
 * Checks the user-data directory `dir` and returns its `user-data` bytes.
 *
 * @throws {EmuError} `image_build_input` when `dir` or its `user-data` is missing or not
 * something cloud-init reads.
 */
export async function checkUserData(dir: string): Promise<Uint8Array> {
  const info = await Deno.stat(dir).catch(() => null);
  if (info === null) throw invalid(dir, "it does not exist");
  if (!info.isDirectory) throw invalid(dir, "it is not a directory");
  let userData: Uint8Array;
  try {
    userData = await Deno.readFile(join(dir, "user-data"));
  } catch {
    throw invalid(dir, "it has no `user-data` file");
  }
  if (userDataKind(new TextDecoder().decode(userData.subarray(0, 256))) === null) {
    throw invalid(dir, "`user-data` does not start with #cloud-config, #!, #include or MIME");
  }
  return userData;
}

/**
 * Writes the seed ISO for the user-data directory `dir` to `out`. `meta-data` is
 * generated when the directory has none. Returns the files it holds.
 *
 * @throws {EmuError} `image_build_input` as {@linkcode checkUserData} does.
 */
export async function writeSeed(
  dir: string,
  out: string,
  hostname: string,
): Promise<string[]> {
  const userData = await checkUserData(dir);
  const entries: IsoEntry[] = await entriesFromDirectory(dir);
  if (!entries.some((e) => e.path === "meta-data")) {
    const id = `emu-build-${createHash("sha256").update(userData).digest("hex").slice(0, 12)}-${
      Date.now().toString(36)
    }`;
    entries.push({ path: "meta-data", data: new TextEncoder().encode(metaData(id, hostname)) });
  }
  await writeIsoFile(entries, out, { label: SEED_LABEL });
  return entries.map((e) => e.path).sort();
}
