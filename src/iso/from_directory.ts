/**
 * Entries for an ISO image from a host directory: every file and directory under it,
 * with its permission bits, in a stable order.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import type { IsoEntry } from "./tree.ts";

const HINT = "Give the directory whose contents go on the image, e.g. emu iso seed/ -o seed.iso.";

/**
 * Lists `dir` recursively as ISO entries (files by `sourcePath`, directories explicit so
 * empty ones are kept). Symbolic links are followed; anything that is neither a file nor
 * a directory is refused.
 */
export async function entriesFromDirectory(dir: string): Promise<IsoEntry[]> {
  let top: Deno.FileInfo;
  try {
    top = await Deno.stat(dir);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such directory"
      : (err as Error).message;
    throw new EmuError("iso_invalid_input", `Cannot read ${dir}: ${reason}`, { hint: HINT });
  }
  if (!top.isDirectory) {
    throw new EmuError("iso_invalid_input", `Cannot read ${dir}: not a directory`, { hint: HINT });
  }
  const entries: IsoEntry[] = [];
  walk(dir, "", entries);
  return entries;
}

// Synchronous on purpose: one thread hand-off per file made large trees slow to list.
function walk(hostDir: string, prefix: string, out: IsoEntry[]): void {
  const names: string[] = [];
  for (const item of Deno.readDirSync(hostDir)) names.push(item.name);
  names.sort();
  for (const name of names) {
    const hostPath = join(hostDir, name);
    const path = prefix === "" ? name : `${prefix}/${name}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(hostPath);
    } catch (err) {
      throw new EmuError("iso_invalid_input", `Cannot read ${hostPath}: ${(err as Error).message}`);
    }
    const mode = info.mode === null ? undefined : info.mode & 0o7777;
    if (info.isDirectory) {
      out.push({ path, directory: true, ...(mode === undefined ? {} : { mode }) });
      walk(hostPath, path, out);
    } else if (info.isFile) {
      out.push({ path, sourcePath: hostPath, ...(mode === undefined ? {} : { mode }) });
    } else {
      throw new EmuError(
        "iso_invalid_input",
        `Cannot add ${hostPath} to the ISO image: it is not a regular file or directory`,
      );
    }
  }
}
