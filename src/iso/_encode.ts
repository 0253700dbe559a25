/**
 * Byte-level encoders for ECMA-119 (ISO 9660) structures. Internal to the writer.
 *
 * @module
 */

/** Logical sector (and block) size used throughout. */
export const SECTOR = 2048;

/** Writes `value` as both-byte-order 16-bit (LE then BE) at `offset`. */
export function both16(view: DataView, offset: number, value: number): void {
  view.setUint16(offset, value, true);
  view.setUint16(offset + 2, value, false);
}

/** Writes `value` as both-byte-order 32-bit (LE then BE) at `offset`. */
export function both32(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value, true);
  view.setUint32(offset + 4, value, false);
}

/** Writes ASCII `text` at `offset`, padded with spaces to `length`. */
export function asciiPadded(bytes: Uint8Array, offset: number, length: number, text: string): void {
  bytes.fill(0x20, offset, offset + length);
  for (let i = 0; i < Math.min(text.length, length); i++) bytes[offset + i] = text.charCodeAt(i);
}

/** Writes UCS-2 big-endian `text` at `offset`, padded with U+0020 to `length` bytes. */
export function ucs2Padded(bytes: Uint8Array, offset: number, length: number, text: string): void {
  for (let i = 0; i + 1 < length; i += 2) {
    const unit = i / 2 < text.length ? text.charCodeAt(i / 2) : 0x20;
    bytes[offset + i] = unit >> 8;
    bytes[offset + i + 1] = unit & 0xff;
  }
}

/** UCS-2 big-endian bytes of `text` (UTF-16 code units, surrogates kept as pairs). */
export function ucs2(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    out[2 * i] = text.charCodeAt(i) >> 8;
    out[2 * i + 1] = text.charCodeAt(i) & 0xff;
  }
  return out;
}

/** The 7-byte directory record date (ECMA-119 9.1.5), always UTC. */
export function recordDate(date: Date): Uint8Array {
  return new Uint8Array([
    date.getUTCFullYear() - 1900,
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    0,
  ]);
}

/** The 17-byte volume descriptor date (ECMA-119 8.4.26.1); `null` means "not specified". */
export function descriptorDate(date: Date | null): Uint8Array {
  const out = new Uint8Array(17);
  if (date === null) {
    out.fill(0x30, 0, 16);
    return out;
  }
  const p = (n: number, w: number) => String(n).padStart(w, "0");
  const text = p(date.getUTCFullYear(), 4) + p(date.getUTCMonth() + 1, 2) +
    p(date.getUTCDate(), 2) +
    p(date.getUTCHours(), 2) + p(date.getUTCMinutes(), 2) + p(date.getUTCSeconds(), 2) +
    p(Math.floor(date.getUTCMilliseconds() / 10), 2);
  for (let i = 0; i < 16; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Number of sectors needed for `bytes` bytes. */
export function sectorsFor(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

/** Compares byte strings as ECMA-119 9.3 orders identifiers: shorter padded with `pad`. */
export function compareBytes(a: Uint8Array, b: Uint8Array, pad: number): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = i < a.length ? a[i] : pad;
    const y = i < b.length ? b[i] : pad;
    if (x !== y) return x - y;
  }
  return 0;
}
