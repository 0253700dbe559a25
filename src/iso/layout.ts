/**
 * Lays out a whole ISO image: assigns every structure its sectors and encodes all
 * metadata (descriptors, path tables, both directory hierarchies, Rock Ridge
 * continuation areas). File bytes are not touched: the plan says where each file goes,
 * and the writer streams them. Pure.
 *
 * Image order: system area (16 sectors), primary descriptor, Joliet descriptor,
 * terminator, ISO L/M path tables, Joliet L/M path tables, ISO directories (each
 * followed by its Rock Ridge continuation areas), Joliet directories, then file data in
 * directory order.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { compareBytes, SECTOR, sectorsFor, ucs2 } from "./_encode.ts";
import {
  pathTable,
  type PathTableEntry,
  pathTableSize,
  terminatorDescriptor,
  volumeDescriptor,
} from "./descriptors.ts";
import {
  isoDirName,
  isoFileName,
  jolietName,
  uniqueIdentifiers,
  type VolumeLabel,
} from "./names.ts";
import {
  baseLength,
  CE_LENGTH,
  ceEntry,
  encodeRecord,
  erEntry,
  FLAG_DIRECTORY,
  nmEntries,
  pxEntry,
  spEntry,
  splitSystemUse,
  tfEntry,
} from "./records.ts";
import type { DirNode, FileNode } from "./tree.ts";

/** Where one file's bytes go. */
export interface PlacedFile {
  sector: number;
  node: FileNode;
}

/** The result of {@linkcode planIso}. */
export interface IsoPlan {
  /** Sectors `0 … header.length / 2048 - 1`, fully encoded. */
  header: Uint8Array;
  /** Non-empty files in ascending sector order, starting right after the header. */
  files: PlacedFile[];
  /** Size of the whole image in sectors. */
  totalSectors: number;
}

/** Options of {@linkcode planIso}. */
export interface PlanOptions {
  label: VolumeLabel;
  /** Every timestamp in the image. */
  date: Date;
}

type Hierarchy = "iso" | "joliet";

interface PlacedDir {
  node: DirNode;
  parent: PlacedDir | null;
  number: number;
  identifier: Uint8Array;
  records: PendingRecord[];
  sectors: number;
  sector: number;
}

type Target = { kind: "self" } | { kind: "parent" } | { kind: "dir"; dir: PlacedDir } | {
  kind: "file";
  file: FileNode;
};

interface PendingRecord {
  identifier: Uint8Array;
  target: Target;
  inline: Uint8Array[];
  continuation: Continuation | null;
  length: number;
}

interface Continuation {
  bytes: Uint8Array;
  block: number;
  offset: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const SYSTEM_AREA = 16;
const FIRST_AFTER_DESCRIPTORS = SYSTEM_AREA + 3;

/**
 * Plans the image of `root`.
 *
 * @example
 * ```ts
 * import { planIso } from "./layout.ts";
 * import { buildTree } from "./tree.ts";
 * import { volumeLabel } from "./names.ts";
 * const root = buildTree([{ path: "meta-data", data: new TextEncoder().encode("x") }], () => 0);
 * const plan = planIso(root, { label: volumeLabel("cidata"), date: new Date(0) });
 * if (plan.totalSectors !== plan.header.length / 2048 + 1) throw new Error();
 * ```
 */
export function planIso(root: DirNode, options: PlanOptions): IsoPlan {
  const isoDirs = placeHierarchy(root, "iso", options.date);
  const jolietDirs = placeHierarchy(root, "joliet", options.date);

  let sector = FIRST_AFTER_DESCRIPTORS;
  const isoTableSize = pathTableSize(isoDirs.map((d) => d.identifier.length));
  const jolietTableSize = pathTableSize(jolietDirs.map((d) => d.identifier.length));
  const tables = { isoL: 0, isoM: 0, jolietL: 0, jolietM: 0 };
  tables.isoL = sector;
  sector += sectorsFor(isoTableSize);
  tables.isoM = sector;
  sector += sectorsFor(isoTableSize);
  tables.jolietL = sector;
  sector += sectorsFor(jolietTableSize);
  tables.jolietM = sector;
  sector += sectorsFor(jolietTableSize);

  // Each directory's continuation areas follow its extent directly: libarchive reads
  // them only at that position. None crosses a sector boundary.
  const areas: Continuation[] = [];
  for (const dir of [...isoDirs, ...jolietDirs]) {
    dir.sector = sector;
    sector += dir.sectors;
    let offset = 0;
    for (const record of dir.records) {
      const area = record.continuation;
      if (area === null) continue;
      if (offset + area.bytes.length > SECTOR) {
        sector++;
        offset = 0;
      }
      area.block = sector;
      area.offset = offset;
      offset += area.bytes.length;
      areas.push(area);
    }
    if (offset > 0) sector++;
  }
  const headerSectors = sector;

  const fileSectors = new Map<FileNode, number>();
  const files: PlacedFile[] = [];
  for (const dir of isoDirs) {
    for (const record of dir.records) {
      if (record.target.kind !== "file" || record.target.file.size === 0) continue;
      fileSectors.set(record.target.file, sector);
      files.push({ sector, node: record.target.file });
      sector += sectorsFor(record.target.file.size);
    }
  }
  const totalSectors = sector;

  const header = new Uint8Array(headerSectors * SECTOR);
  const isoRoot = isoDirs[0];
  const jolietRoot = jolietDirs[0];
  const rootRecord = (dir: PlacedDir) =>
    encodeRecord({
      identifier: new Uint8Array([0]),
      extent: dir.sector,
      size: dir.sectors * SECTOR,
      date: options.date,
      flags: FLAG_DIRECTORY,
      systemUse: new Uint8Array(0),
    });
  header.set(
    volumeDescriptor({
      kind: "primary",
      label: options.label.iso,
      totalSectors,
      pathTableSize: isoTableSize,
      lPathTable: tables.isoL,
      mPathTable: tables.isoM,
      rootRecord: rootRecord(isoRoot),
      date: options.date,
    }),
    SYSTEM_AREA * SECTOR,
  );
  header.set(
    volumeDescriptor({
      kind: "joliet",
      label: options.label.joliet,
      totalSectors,
      pathTableSize: jolietTableSize,
      lPathTable: tables.jolietL,
      mPathTable: tables.jolietM,
      rootRecord: rootRecord(jolietRoot),
      date: options.date,
    }),
    (SYSTEM_AREA + 1) * SECTOR,
  );
  header.set(terminatorDescriptor(), (SYSTEM_AREA + 2) * SECTOR);

  const tableEntries = (dirs: PlacedDir[]): PathTableEntry[] =>
    dirs.map((d) => ({
      identifier: d.identifier,
      extent: d.sector,
      parent: (d.parent ?? d).number,
    }));
  header.set(pathTable(tableEntries(isoDirs), true), tables.isoL * SECTOR);
  header.set(pathTable(tableEntries(isoDirs), false), tables.isoM * SECTOR);
  header.set(pathTable(tableEntries(jolietDirs), true), tables.jolietL * SECTOR);
  header.set(pathTable(tableEntries(jolietDirs), false), tables.jolietM * SECTOR);

  for (const dir of [...isoDirs, ...jolietDirs]) {
    let at = dir.sector * SECTOR;
    const end = at + dir.sectors * SECTOR;
    for (const record of dir.records) {
      if ((at % SECTOR) + record.length > SECTOR) at += SECTOR - (at % SECTOR);
      const [extent, size] = extentOf(record.target, dir, fileSectors);
      const systemUse = record.continuation === null ? concatBytes(record.inline) : concatBytes([
        ...record.inline,
        ceEntry(
          record.continuation.block,
          record.continuation.offset,
          record.continuation.bytes.length,
        ),
      ]);
      const bytes = encodeRecord({
        identifier: record.identifier,
        extent,
        size,
        date: options.date,
        flags: record.target.kind === "file" ? 0 : FLAG_DIRECTORY,
        systemUse,
      });
      if (bytes.length !== record.length) {
        throw new Error(`Cannot lay out the ISO image: record size changed`);
      }
      header.set(bytes, at);
      at += bytes.length;
    }
    if (at > end) throw new Error("Cannot lay out the ISO image: directory overflowed its extent");
  }
  for (const area of areas) header.set(area.bytes, area.block * SECTOR + area.offset);

  return { header, files, totalSectors };
}

function extentOf(
  target: Target,
  dir: PlacedDir,
  fileSectors: Map<FileNode, number>,
): [number, number] {
  switch (target.kind) {
    case "self":
      return [dir.sector, dir.sectors * SECTOR];
    case "parent": {
      const parent = dir.parent ?? dir;
      return [parent.sector, parent.sectors * SECTOR];
    }
    case "dir":
      return [target.dir.sector, target.dir.sectors * SECTOR];
    case "file":
      // Empty files own no sectors; extent 0 is what readers expect for them.
      return [fileSectors.get(target.file) ?? 0, target.file.size];
  }
}

/** The directories of one hierarchy in path table order, with their records sized. */
function placeHierarchy(root: DirNode, hierarchy: Hierarchy, date: Date): PlacedDir[] {
  const rootDir: PlacedDir = {
    node: root,
    parent: null,
    number: 1,
    identifier: new Uint8Array([0]),
    records: [],
    sectors: 0,
    sector: 0,
  };
  const queue = [rootDir];
  const out: PlacedDir[] = [];
  while (queue.length > 0) {
    const dir = queue.shift()!;
    out.push(dir);
    dir.number = out.length;
    const children = childIdentifiers(dir.node, hierarchy);
    const records: PendingRecord[] = [
      pendingRecord(
        new Uint8Array([0]),
        { kind: "self" },
        selfEntries(dir, hierarchy, date),
        hierarchy,
      ),
      pendingRecord(
        new Uint8Array([1]),
        { kind: "parent" },
        parentEntries(dir, hierarchy, date),
        hierarchy,
      ),
    ];
    for (const child of children) {
      let target: Target;
      if (child.node.kind === "dir") {
        const placed: PlacedDir = {
          node: child.node,
          parent: dir,
          number: 0,
          identifier: child.identifier,
          records: [],
          sectors: 0,
          sector: 0,
        };
        queue.push(placed);
        target = { kind: "dir", dir: placed };
      } else {
        target = { kind: "file", file: child.node };
      }
      const entries = hierarchy === "iso"
        ? [
          pxEntry(posixMode(child.node), links(child.node)),
          tfEntry(date),
          ...nmEntries(child.node.name),
        ]
        : [];
      records.push(pendingRecord(child.identifier, target, entries, hierarchy));
    }
    dir.records = records;
    dir.sectors = directorySectors(records);
  }
  return out;
}

function selfEntries(dir: PlacedDir, hierarchy: Hierarchy, date: Date): Uint8Array[] {
  if (hierarchy === "joliet") return [];
  const entries = [pxEntry(posixMode(dir.node), links(dir.node)), tfEntry(date)];
  // SUSP: SP opens the root's "." record; ER announces Rock Ridge.
  return dir.parent === null ? [spEntry(), ...entries, erEntry()] : entries;
}

function parentEntries(dir: PlacedDir, hierarchy: Hierarchy, date: Date): Uint8Array[] {
  if (hierarchy === "joliet") return [];
  const parent = (dir.parent ?? dir).node;
  return [pxEntry(posixMode(parent), links(parent)), tfEntry(date)];
}

function pendingRecord(
  identifier: Uint8Array,
  target: Target,
  entries: Uint8Array[],
  hierarchy: Hierarchy,
): PendingRecord {
  const split = hierarchy === "iso"
    ? splitSystemUse(identifier.length, entries)
    : { inline: [], continued: [] };
  const continuation = split.continued.length === 0
    ? null
    : { bytes: concatBytes(split.continued), block: 0, offset: 0 };
  const systemUse = split.inline.reduce((n, e) => n + e.length, 0) + (continuation ? CE_LENGTH : 0);
  let length = baseLength(identifier.length) + systemUse;
  if (length % 2 === 1) length++;
  return { identifier, target, inline: split.inline, continuation, length };
}

function directorySectors(records: PendingRecord[]): number {
  let at = 0;
  for (const record of records) {
    if ((at % SECTOR) + record.length > SECTOR) at += SECTOR - (at % SECTOR);
    at += record.length;
  }
  return sectorsFor(at);
}

interface Child {
  identifier: Uint8Array;
  node: FileNode | DirNode;
}

/** Children of `dir` with unique identifiers, sorted as ECMA-119 9.3 requires. */
function childIdentifiers(dir: DirNode, hierarchy: Hierarchy): Child[] {
  const names = [...dir.children.keys()].sort();
  const isDir = (name: string) => dir.children.get(name)!.kind === "dir";
  if (hierarchy === "iso") {
    const ids = uniqueIdentifiers(
      names,
      (name, n) => isDir(name) ? isoDirName(name, n) : isoFileName(name, n),
    );
    return names
      .map((name, i) => ({
        identifier: new TextEncoder().encode(ids[i]),
        node: dir.children.get(name)!,
      }))
      .sort((a, b) => compareIsoIdentifiers(a.identifier, b.identifier));
  }
  const ids = uniqueIdentifiers(names, jolietName);
  return names
    // No ";1" version suffix on Joliet names, as genisoimage and xorriso write them.
    .map((name, i) => ({ identifier: ucs2(ids[i]), node: dir.children.get(name)! }))
    .sort((a, b) => compareBytes(a.identifier, b.identifier, 0));
}

/** ECMA-119 9.3: compare names, then extensions, each padded with spaces. */
function compareIsoIdentifiers(a: Uint8Array, b: Uint8Array): number {
  const [aName, aExt] = splitIdentifier(a);
  const [bName, bExt] = splitIdentifier(b);
  return compareBytes(aName, bName, 0x20) || compareBytes(aExt, bExt, 0x20);
}

function splitIdentifier(id: Uint8Array): [Uint8Array, Uint8Array] {
  const semicolon = id.indexOf(0x3b);
  const body = semicolon < 0 ? id : id.subarray(0, semicolon);
  const dot = body.indexOf(0x2e);
  return dot < 0 ? [body, new Uint8Array(0)] : [body.subarray(0, dot), body.subarray(dot + 1)];
}

function posixMode(node: FileNode | DirNode): number {
  return (node.kind === "dir" ? S_IFDIR : S_IFREG) | node.mode;
}

function links(node: FileNode | DirNode): number {
  if (node.kind === "file") return 1;
  let subdirs = 0;
  for (const child of node.children.values()) if (child.kind === "dir") subdirs++;
  return 2 + subdirs;
}
