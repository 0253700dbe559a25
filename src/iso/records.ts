/**
 * Directory records (ECMA-119 9.1) and the Rock Ridge / SUSP entries carried in their
 * System Use field (IEEE P1282 RRIP 1.10, P1281 SUSP). Internal to the writer.
 *
 * @module
 */
import { both16, both32, recordDate } from "./_encode.ts";

/** Longest directory record (its length is one byte). */
export const MAX_RECORD = 255;
/** Size of a SUSP `CE` (continuation area) entry. */
export const CE_LENGTH = 28;

/** File flags of a directory record. */
export const FLAG_DIRECTORY = 0x02;

/** Fields of one directory record; `extent` and `size` are filled in once laid out. */
export interface RecordFields {
  identifier: Uint8Array;
  extent: number;
  size: number;
  date: Date;
  flags: number;
  systemUse: Uint8Array;
}

/** Length of the record without System Use: 33 + identifier + padding to even (9.1.12). */
export function baseLength(identifierLength: number): number {
  return 33 + identifierLength + (identifierLength % 2 === 0 ? 1 : 0);
}

/** Encodes a directory record; its System Use field is padded to keep the length even. */
export function encodeRecord(fields: RecordFields): Uint8Array {
  const base = baseLength(fields.identifier.length);
  let length = base + fields.systemUse.length;
  if (length % 2 === 1) length++;
  if (length > MAX_RECORD) {
    throw new RangeError(`Cannot encode a directory record of ${length} bytes`);
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  out[0] = length;
  both32(view, 2, fields.extent);
  both32(view, 10, fields.size);
  out.set(recordDate(fields.date), 18);
  out[25] = fields.flags;
  both16(view, 28, 1);
  out[32] = fields.identifier.length;
  out.set(fields.identifier, 33);
  out.set(fields.systemUse, base);
  return out;
}

function entry(signature: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = signature.charCodeAt(0);
  out[1] = signature.charCodeAt(1);
  out[2] = out.length;
  out[3] = 1;
  out.set(body, 4);
  return out;
}

/** SUSP `SP`: marks the root's `.` record as using SUSP, skipping 0 bytes. */
export function spEntry(): Uint8Array {
  return entry("SP", new Uint8Array([0xbe, 0xef, 0]));
}

/** RRIP `PX`: POSIX mode (with file type bits), links, uid, gid. */
export function pxEntry(mode: number, links: number): Uint8Array {
  const body = new Uint8Array(32);
  const view = new DataView(body.buffer);
  both32(view, 0, mode);
  both32(view, 8, links);
  both32(view, 16, 0);
  both32(view, 24, 0);
  return entry("PX", body);
}

/** RRIP `TF`: modify, access and attribute-change times, all `date`. */
export function tfEntry(date: Date): Uint8Array {
  const stamp = recordDate(date);
  const body = new Uint8Array(1 + 3 * 7);
  body[0] = 0x02 | 0x04 | 0x08;
  for (let i = 0; i < 3; i++) body.set(stamp, 1 + 7 * i);
  return entry("TF", body);
}

/** RRIP `NM` entries for `name`, split into pieces flagged CONTINUE so each fits an entry. */
export function nmEntries(name: string): Uint8Array[] {
  const bytes = new TextEncoder().encode(name);
  const pieces: Uint8Array[] = [];
  const chunk = 250;
  for (let at = 0; at < bytes.length; at += chunk) {
    const part = bytes.subarray(at, at + chunk);
    const body = new Uint8Array(1 + part.length);
    body[0] = at + chunk < bytes.length ? 0x01 : 0x00;
    body.set(part, 1);
    pieces.push(entry("NM", body));
  }
  return pieces;
}

const ER_ID = "RRIP_1991A";
const ER_DESCRIPTOR =
  "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SOURCE =
  "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/** SUSP `ER`: declares the Rock Ridge extension (Linux enables Rock Ridge when it sees it). */
export function erEntry(): Uint8Array {
  const text = new TextEncoder().encode(ER_ID + ER_DESCRIPTOR + ER_SOURCE);
  const body = new Uint8Array(4 + text.length);
  body[0] = ER_ID.length;
  body[1] = ER_DESCRIPTOR.length;
  body[2] = ER_SOURCE.length;
  body[3] = 1;
  body.set(text, 4);
  return entry("ER", body);
}

/** SUSP `CE`: the rest of the System Use entries is `length` bytes at `block`:`offset`. */
export function ceEntry(block: number, offset: number, length: number): Uint8Array {
  const body = new Uint8Array(24);
  const view = new DataView(body.buffer);
  both32(view, 0, block);
  both32(view, 8, offset);
  both32(view, 16, length);
  return entry("CE", body);
}

/** System Use entries split between the record itself and a continuation area. */
export interface SystemUseSplit {
  /** Entries that stay in the record (a `CE` is appended when `continued` is non-empty). */
  inline: Uint8Array[];
  /** Entries moved to a continuation area. */
  continued: Uint8Array[];
}

/**
 * Keeps entries in the record while they fit in {@linkcode MAX_RECORD} (leaving room for
 * a `CE` if anything must move), and moves the rest to a continuation area.
 */
export function splitSystemUse(identifierLength: number, entries: Uint8Array[]): SystemUseSplit {
  const base = baseLength(identifierLength);
  const total = entries.reduce((n, e) => n + e.length, 0);
  if (base + total <= MAX_RECORD) return { inline: entries, continued: [] };
  const inline: Uint8Array[] = [];
  let used = base + CE_LENGTH;
  let i = 0;
  for (; i < entries.length && used + entries[i].length <= MAX_RECORD; i++) {
    inline.push(entries[i]);
    used += entries[i].length;
  }
  return { inline, continued: entries.slice(i) };
}
