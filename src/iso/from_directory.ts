/**
 * Entries for an ISO image from a host directory: every file and directory under it,
 * with its permission bits, in a stable order.
 *
 * @module
 */
import { join, sep } from "node:path";
import { EmuError } from "../errors.ts";
import type { IsoEntry } from "./tree.ts";

/** Options of {@linkcode entriesFromDirectory}. */
export interface DirectoryOptions {
  /**
   * Follow symbolic links that lead out of the directory (default `false`: refused, so a
   * link planted in a seed directory cannot put `~/.ssh` on a guest's disk).
   */
  followSymlinks?: boolean;
}

const HINT = "Give the directory whose contents go on the image, e.g. emu iso seed/ -o seed.iso.";

/**
 * Lists `dir` recursively as ISO entries (files by `sourcePath`, directories explicit so
 * empty ones are kept). Symbolic links within `dir` are followed; one that leads out of
 * it is refused unless `followSymlinks`, and a link cycle is always refused. Anything
 * that is neither a file nor a directory is refused.
 */
export async function entriesFromDirectory(
  dir: string,
  options: DirectoryOptions = {},
): Promise<IsoEntry[]> {
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
  const root = Deno.realPathSync(dir);
  walk(dir, "", entries, {
    root,
    follow: options.followSymlinks === true,
    open: new Set([root]),
  });
  return entries;
}

interface WalkState {
  /** The real path of the top directory. */
  root: string;
  follow: boolean;
  /** Real paths of the directories being walked (a link back to one is a cycle). */
  open: Set<string>;
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

// Synchronous on purpose: one thread hand-off per file made large trees slow to list.
function walk(hostDir: string, prefix: string, out: IsoEntry[], state: WalkState): void {
  const names: string[] = [];
  for (const item of Deno.readDirSync(hostDir)) names.push(item.name);
  names.sort();
  for (const name of names) {
    const hostPath = join(hostDir, name);
    const path = prefix === "" ? name : `${prefix}/${name}`;
    let info: Deno.FileInfo;
    let real: string;
    try {
      info = Deno.statSync(hostPath);
      real = Deno.realPathSync(hostPath);
    } catch (err) {
      throw new EmuError("iso_invalid_input", `Cannot read ${hostPath}: ${(err as Error).message}`);
    }
    if (!state.follow && !inside(state.root, real)) {
      throw new EmuError(
        "iso_invalid_input",
        `Cannot add ${hostPath} to the ISO image: it is a symbolic link to ${real}, outside ${state.root}`,
        {
          hint:
            "Copy the file into the directory, or pass --follow-symlinks if it really belongs on the image.",
        },
      );
    }
    const mode = info.mode === null ? undefined : info.mode & 0o7777;
    if (info.isDirectory) {
      if (state.open.has(real)) {
        throw new EmuError(
          "iso_invalid_input",
          `Cannot add ${hostPath} to the ISO image: it links back to ${real}, a directory that contains it`,
        );
      }
      out.push({ path, directory: true, ...(mode === undefined ? {} : { mode }) });
      state.open.add(real);
      walk(hostPath, path, out, state);
      state.open.delete(real);
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
