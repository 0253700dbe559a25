/**
 * The file tree to put on a disc, built from a flat list of entries and checked: no
 * `..`, no absolute paths, no duplicates, no file where a directory is needed, sizes
 * within ISO 9660's 32-bit limit. Pure: sizes of host files are passed in.
 *
 * @module
 */
import { EmuError } from "../errors.ts";

/** One entry of an ISO image to build. Exactly one of `data`/`sourcePath`, or `directory`. */
export interface IsoEntry {
  /** Path inside the image, `/`-separated and relative: `user-data`, `etc/emu/runtime.env`. */
  path: string;
  /** File content held in memory. */
  data?: Uint8Array;
  /** Host file to stream the content from. */
  sourcePath?: string;
  /** An explicit (possibly empty) directory. Parents of files are created implicitly. */
  directory?: boolean;
  /** POSIX permission bits (Rock Ridge); default 0644 for files, 0755 for directories. */
  mode?: number;
}

/** Where a file's bytes come from. */
export type FileSource = { kind: "data"; data: Uint8Array } | { kind: "path"; path: string };

/** A file in the tree. */
export interface FileNode {
  kind: "file";
  name: string;
  mode: number;
  size: number;
  source: FileSource;
}

/** A directory in the tree. */
export interface DirNode {
  kind: "dir";
  name: string;
  mode: number;
  children: Map<string, FileNode | DirNode>;
}

/** Largest file ISO 9660 records in one extent (32-bit size field). */
export const MAX_FILE_SIZE = 0xffff_ffff;
/** Deepest directory level ECMA-119 allows (6.8.2.1); deeper needs Rock Ridge relocation. */
export const MAX_DEPTH = 8;
/** Longest name component in UTF-8 bytes (POSIX NAME_MAX, what Rock Ridge names hold here). */
export const MAX_NAME_BYTES = 255;

const DEFAULT_FILE_MODE = 0o644;
const DEFAULT_DIR_MODE = 0o755;

function invalid(message: string, hint?: string): EmuError {
  return new EmuError("iso_invalid_input", message, hint === undefined ? {} : { hint });
}

/** Splits and checks an entry path, returning its components. */
export function pathComponents(path: string): string[] {
  if (path === "") throw invalid("Cannot add an entry with an empty path to the ISO image");
  if (path.startsWith("/")) {
    throw invalid(
      `Cannot add "${path}" to the ISO image: absolute paths are not allowed`,
      "Give paths relative to the image root, like user-data.",
    );
  }
  const parts = path.split("/");
  for (const part of parts) {
    if (part === ".." || part === "." || part === "") {
      throw invalid(
        `Cannot add "${path}" to the ISO image: ${
          part === "" ? "an empty component" : `"${part}"`
        } is not allowed in a path`,
        "Use plain relative paths without '.', '..' or empty components.",
      );
    }
    if (/[\0\\]/.test(part)) {
      throw invalid(
        `Cannot add "${path}" to the ISO image: NUL and backslash are not allowed in names`,
      );
    }
    if (new TextEncoder().encode(part).length > MAX_NAME_BYTES) {
      throw invalid(
        `Cannot add "${path}" to the ISO image: the name "${
          part.slice(0, 20)
        }…" is longer than ${MAX_NAME_BYTES} bytes`,
      );
    }
  }
  if (parts.length > MAX_DEPTH) {
    throw invalid(
      `Cannot add "${path}" to the ISO image: it is ${parts.length} levels deep; ISO 9660 allows ${MAX_DEPTH}`,
    );
  }
  return parts;
}

/**
 * Builds the tree. `sizeOf` gives the size of a host source file (stat'ed by the caller).
 *
 * @example
 * ```ts
 * import { buildTree } from "./tree.ts";
 * const root = buildTree([{ path: "a/b.txt", data: new Uint8Array(3) }], () => 0);
 * const a = root.children.get("a");
 * if (a?.kind !== "dir" || a.children.get("b.txt")?.kind !== "file") throw new Error();
 * ```
 */
export function buildTree(
  entries: readonly IsoEntry[],
  sizeOf: (sourcePath: string) => number,
): DirNode {
  const root: DirNode = { kind: "dir", name: "", mode: DEFAULT_DIR_MODE, children: new Map() };
  const explicit = new Set<string>();
  for (const entry of entries) {
    const parts = pathComponents(entry.path);
    const key = parts.join("/");
    if (explicit.has(key)) {
      throw invalid(`Cannot add "${entry.path}" to the ISO image: the path is listed twice`);
    }
    explicit.add(key);
    const sources = Number(entry.data !== undefined) + Number(entry.sourcePath !== undefined) +
      Number(entry.directory === true);
    if (sources !== 1) {
      throw invalid(
        `Cannot add "${entry.path}" to the ISO image: give exactly one of data, sourcePath or directory`,
      );
    }
    if (
      entry.mode !== undefined &&
      (!Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777)
    ) {
      throw invalid(
        `Cannot add "${entry.path}" to the ISO image: mode ${entry.mode} is not a permission value (0 to 0o7777)`,
      );
    }

    let dir = root;
    for (const [i, part] of parts.slice(0, -1).entries()) {
      const existing = dir.children.get(part);
      if (existing?.kind === "file") {
        throw invalid(
          `Cannot add "${entry.path}" to the ISO image: "${
            parts.slice(0, i + 1).join("/")
          }" is a file`,
        );
      }
      if (existing === undefined) {
        const created: DirNode = {
          kind: "dir",
          name: part,
          mode: DEFAULT_DIR_MODE,
          children: new Map(),
        };
        dir.children.set(part, created);
        dir = created;
      } else {
        dir = existing;
      }
    }

    const name = parts[parts.length - 1];
    const existing = dir.children.get(name);
    if (entry.directory) {
      if (existing?.kind === "file") {
        throw invalid(`Cannot add "${entry.path}" to the ISO image: it is already a file`);
      }
      const node: DirNode = existing ??
        { kind: "dir", name, mode: DEFAULT_DIR_MODE, children: new Map() };
      node.mode = entry.mode ?? DEFAULT_DIR_MODE;
      dir.children.set(name, node);
      continue;
    }
    if (existing !== undefined) {
      throw invalid(`Cannot add "${entry.path}" to the ISO image: it is already a directory`);
    }
    const source: FileSource = entry.data !== undefined
      ? { kind: "data", data: entry.data }
      : { kind: "path", path: entry.sourcePath! };
    const size = source.kind === "data" ? source.data.length : sizeOf(source.path);
    if (size > MAX_FILE_SIZE) {
      throw new EmuError(
        "iso_too_large",
        `Cannot add "${entry.path}" to the ISO image: it is ${size} bytes; one ISO 9660 extent holds at most ${MAX_FILE_SIZE}`,
        { hint: "Config disks hold small files; put large data on the qcow2 image instead." },
      );
    }
    dir.children.set(name, {
      kind: "file",
      name,
      mode: entry.mode ?? DEFAULT_FILE_MODE,
      size,
      source,
    });
  }
  return root;
}
