/**
 * Volume descriptors (ECMA-119 8.4, 8.5; Joliet) and path tables (9.4). Internal.
 *
 * @module
 */
import { asciiPadded, both16, both32, descriptorDate, SECTOR, ucs2Padded } from "./_encode.ts";

/** What a primary or Joliet supplementary volume descriptor records. */
export interface DescriptorFields {
  kind: "primary" | "joliet";
  /** Volume label in the descriptor's character set (d-characters, or any for Joliet). */
  label: string;
  totalSectors: number;
  pathTableSize: number;
  lPathTable: number;
  mPathTable: number;
  /** The 34-byte root directory record. */
  rootRecord: Uint8Array;
  date: Date;
}

/** Application identifier: fixed (no version) so output bytes do not change between emu releases. */
const APPLICATION = "EMU";

/** Encodes a primary (type 1) or Joliet supplementary (type 2, UCS-2 level 3) descriptor. */
export function volumeDescriptor(fields: DescriptorFields): Uint8Array {
  const out = new Uint8Array(SECTOR);
  const view = new DataView(out.buffer);
  const joliet = fields.kind === "joliet";
  const text = joliet ? ucs2Padded : asciiPadded;
  out[0] = joliet ? 2 : 1;
  out.set([0x43, 0x44, 0x30, 0x30, 0x31], 1); // "CD001"
  out[6] = 1;
  text(out, 8, 32, ""); // system identifier
  text(out, 40, 32, fields.label);
  both32(view, 80, fields.totalSectors);
  if (joliet) out.set([0x25, 0x2f, 0x45], 88); // "%/E": UCS-2 level 3
  both16(view, 120, 1); // volume set size
  both16(view, 124, 1); // volume sequence number
  both16(view, 128, SECTOR);
  both32(view, 132, fields.pathTableSize);
  view.setUint32(140, fields.lPathTable, true);
  view.setUint32(148, fields.mPathTable, false);
  out.set(fields.rootRecord, 156);
  text(out, 190, 128, ""); // volume set
  text(out, 318, 128, ""); // publisher
  text(out, 446, 128, ""); // data preparer
  text(out, 574, 128, APPLICATION);
  text(out, 702, 37, ""); // copyright file
  text(out, 739, 37, ""); // abstract file
  text(out, 776, 37, ""); // bibliographic file
  out.set(descriptorDate(fields.date), 813); // creation
  out.set(descriptorDate(fields.date), 830); // modification
  out.set(descriptorDate(null), 847); // expiration
  out.set(descriptorDate(null), 864); // effective
  out[881] = 1; // file structure version
  return out;
}

/** The volume descriptor set terminator (type 255). */
export function terminatorDescriptor(): Uint8Array {
  const out = new Uint8Array(SECTOR);
  out[0] = 255;
  out.set([0x43, 0x44, 0x30, 0x30, 0x31], 1);
  out[6] = 1;
  return out;
}

/** One directory as the path table lists it. */
export interface PathTableEntry {
  identifier: Uint8Array;
  extent: number;
  /** Path table number of the parent (the root is its own parent, number 1). */
  parent: number;
}

/** Size in bytes of a path table holding `identifiers`. */
export function pathTableSize(identifierLengths: readonly number[]): number {
  return identifierLengths.reduce((n, len) => n + 8 + len + (len % 2), 0);
}

/** Encodes a path table, little-endian (L) or big-endian (M). */
export function pathTable(entries: readonly PathTableEntry[], littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(pathTableSize(entries.map((e) => e.identifier.length)));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of entries) {
    out[at] = e.identifier.length;
    view.setUint32(at + 2, e.extent, littleEndian);
    view.setUint16(at + 6, e.parent, littleEndian);
    out.set(e.identifier, at + 8);
    at += 8 + e.identifier.length + (e.identifier.length % 2);
  }
  return out;
}
