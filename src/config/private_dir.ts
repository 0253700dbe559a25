/**
 * Private directories: the emu home and the socket directory must belong to the user and
 * be closed to everyone else. Another local account that could create, replace or write
 * into them could take the QMP/QGA sockets (and with them the rotated secrets) or read
 * the run disks. The decisions are pure functions; the two `ensure…` functions apply
 * them to the disk.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";

/** What the checks need to know about a directory (from `lstat`). */
export interface DirFacts {
  isSymlink: boolean;
  isDirectory: boolean;
  /** Owner uid, or `null` where the OS has none (Windows). */
  uid: number | null;
  /** Permission bits, or `null` where the OS has none. */
  mode: number | null;
}

/**
 * Why `dir` may not hold emu's sockets, or `null` when it may: it must be a real
 * directory (not a symlink), owned by `uid`, and writable by nobody else. A directory
 * readable by others is not a problem here: {@linkcode ensureRuntimeDir} tightens it.
 *
 * @example
 * ```ts
 * import { runtimeDirProblem } from "./private_dir.ts";
 * const facts = { isSymlink: false, isDirectory: true, uid: 1000, mode: 0o40777 };
 * if (runtimeDirProblem(facts, 1000) !== "it is writable by other users (mode 0777)") throw new Error();
 * ```
 */
export function runtimeDirProblem(facts: DirFacts, uid: number | null): string | null {
  return dirProblem(facts, uid, 0o022);
}

/**
 * Why `dir` may not be the emu home, or `null` when it may: owned by the user, and not a
 * shared directory such as `/tmp` (writable by all). Group and read bits (a home made
 * under umask 002 or 022) are tightened by {@linkcode ensurePrivateHome} instead.
 */
export function homeProblem(facts: DirFacts, uid: number | null): string | null {
  return dirProblem(facts, uid, 0o002);
}

/** The shared checks: a real directory, the user's, none of `writableBits` set. */
function dirProblem(facts: DirFacts, uid: number | null, writableBits: number): string | null {
  if (facts.isSymlink) return "it is a symbolic link";
  if (!facts.isDirectory) return "it is not a directory";
  if (uid !== null && facts.uid !== null && facts.uid !== uid) {
    return `it belongs to uid ${facts.uid}, not to you (uid ${uid})`;
  }
  if (facts.mode !== null && (facts.mode & writableBits) !== 0) {
    return `it is writable by other users (mode ${
      (facts.mode & 0o777).toString(8).padStart(4, "0")
    })`;
  }
  return null;
}

function facts(info: Deno.FileInfo): DirFacts {
  return {
    isSymlink: info.isSymlink,
    isDirectory: info.isDirectory,
    uid: info.uid,
    mode: info.mode,
  };
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Creates the socket directory (mode 0700) or checks the one that exists, tightening its
 * mode to 0700 when it is only readable by others.
 *
 * @throws {EmuError} `runtime_dir_unusable` when it is a symlink, not the user's, or
 * writable by others: nothing is created in it and no socket in it is used.
 */
export function ensureRuntimeDir(dir: string, uid: number | null = Deno.uid()): void {
  let info = lstatOrNull(dir);
  if (info === null) {
    try {
      // The parent may be made for us; the directory itself must be created here, by
      // us: if another user got there first, mkdir fails and the checks below refuse it.
      Deno.mkdirSync(join(dir, ".."), { recursive: true, mode: 0o700 });
      Deno.mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) {
        throw new EmuError(
          "runtime_dir_unusable",
          `Cannot create the socket directory ${dir}: ${(err as Error).message}`,
          {
            hint:
              "Set EMU_RUNTIME_DIR to a short directory you can write, such as /tmp/emu-sockets.",
          },
        );
      }
    }
    info = Deno.lstatSync(dir);
  }
  const problem = runtimeDirProblem(facts(info), uid);
  if (problem !== null) {
    throw new EmuError(
      "runtime_dir_unusable",
      `Cannot use the socket directory ${dir}: ${problem}`,
      {
        hint:
          "Another user could reach emu's QEMU and guest-agent sockets there. Remove it if it is yours and stale, or set EMU_RUNTIME_DIR to a directory only you can write.",
      },
    );
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) Deno.chmodSync(dir, 0o700);
}

/**
 * Makes an existing emu home private: 0700, and when it was looser (made by an older emu
 * under umask 022), every directory below 0700 and every file without group and other
 * bits. A home that does not exist yet is left alone (it is created private).
 *
 * @throws {EmuError} `home_unusable` for a home that is not the user's or is shared.
 */
export function ensurePrivateHome(home: string, uid: number | null = Deno.uid()): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(home);
  } catch {
    return; // missing (created private later) or unreachable (the command reports it)
  }
  const problem = homeProblem(facts(info), uid);
  if (problem !== null) {
    throw new EmuError("home_unusable", `Cannot use ${home} as the emu home: ${problem}`, {
      hint:
        "The emu home holds run disks with secrets in them: use a directory only you can write (--home or EMU_HOME).",
    });
  }
  if (info.mode === null || (info.mode & 0o077) === 0) return;
  tighten(home);
}

function tighten(path: string): void {
  const info = Deno.lstatSync(path);
  if (info.isSymlink || info.mode === null) return;
  if ((info.mode & 0o077) !== 0) Deno.chmodSync(path, info.mode & 0o700);
  if (!info.isDirectory) return;
  for (const entry of Deno.readDirSync(path)) tighten(join(path, entry.name));
}
