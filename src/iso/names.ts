/**
 * Names on the disc: ISO 9660 level-2 identifiers (d-characters, kept unique within a
 * directory), Joliet names (UCS-2, at most 64 code units), and volume labels.
 *
 * @module
 */
import { EmuError } from "../errors.ts";

/** Longest Joliet name in UCS-2 code units (Joliet specification). */
export const JOLIET_MAX_UNITS = 64;
/** Level 2: a file's name plus extension is at most 30 characters (ECMA-119 7.5.1). */
const ISO_FILE_MAX = 30;
/** Level 2: a directory identifier is at most 31 characters (ECMA-119 7.6.3). */
const ISO_DIR_MAX = 31;
/** Longest volume identifier (ECMA-119 8.4.6: 32 d-characters). */
export const LABEL_MAX = 32;
/** Joliet's volume identifier holds 16 UCS-2 characters; longer labels are cut there. */
export const JOLIET_LABEL_MAX = 16;

/** Replaces every character that is not a d-character (A–Z, 0–9, _) by `_`, after upper-casing. */
function dChars(text: string): string {
  return text.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
}

/**
 * The ISO 9660 level-2 identifier of a file, before de-duplication: `NAME.EXT;1`.
 *
 * @example
 * ```ts
 * import { isoFileName } from "./names.ts";
 * if (isoFileName("user-data") !== "USER_DATA.;1") throw new Error();
 * if (isoFileName("Runtime.env") !== "RUNTIME.ENV;1") throw new Error();
 * ```
 */
export function isoFileName(name: string, attempt = 0): string {
  const suffix = attempt === 0 ? "" : `_${attempt}`;
  const dot = name.lastIndexOf(".");
  let base = dot > 0 ? name.slice(0, dot) : name;
  let ext = dot > 0 ? name.slice(dot + 1) : "";
  base = dChars(base);
  ext = dChars(ext).slice(0, 8);
  const room = ISO_FILE_MAX - ext.length - suffix.length;
  base = base.slice(0, Math.max(1, room)) + suffix;
  return `${base}.${ext};1`;
}

/** The ISO 9660 level-2 identifier of a directory, before de-duplication. */
export function isoDirName(name: string, attempt = 0): string {
  const suffix = attempt === 0 ? "" : `_${attempt}`;
  return dChars(name).slice(0, ISO_DIR_MAX - suffix.length) + suffix;
}

/**
 * Assigns each name of one directory a unique identifier. Names are taken in the order
 * given (callers pass them sorted, so the result is deterministic); a clash is retried
 * with `make(name, 1)`, `make(name, 2)`, … until the identifier is free. `key` says when
 * two identifiers clash (e.g. case-insensitively).
 */
export function uniqueIdentifiers(
  names: readonly string[],
  make: (name: string, attempt: number) => string,
  key: (identifier: string) => string = (id) => id,
): string[] {
  const taken = new Set<string>();
  return names.map((name) => {
    let id = make(name, 0);
    for (let n = 1; taken.has(key(id)); n++) id = make(name, n);
    taken.add(key(id));
    return id;
  });
}

/**
 * A Joliet name: the name cut to {@linkcode JOLIET_MAX_UNITS} UTF-16 code units
 * without splitting a surrogate pair; a clash (attempt N > 0) gets a `~N` suffix kept
 * inside the limit.
 *
 * @example
 * ```ts
 * import { jolietName } from "./names.ts";
 * if (jolietName("a".repeat(70)).length !== 64) throw new Error();
 * if (jolietName("a".repeat(63) + "😀") !== "a".repeat(63)) throw new Error();
 * ```
 */
export function jolietName(name: string, attempt = 0): string {
  const suffix = attempt === 0 ? "" : `~${attempt}`;
  const limit = JOLIET_MAX_UNITS - suffix.length;
  let cut = name.slice(0, limit);
  const last = cut.charCodeAt(cut.length - 1);
  if (cut.length < name.length && last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return cut + suffix;
}

/** A volume label as written: upper-case d-characters in the primary descriptor, as given in Joliet. */
export interface VolumeLabel {
  /** For the primary volume descriptor (d-characters). */
  iso: string;
  /** For the Joliet descriptor (case kept; cut to 16 characters). */
  joliet: string;
}

/**
 * Validates a volume label (`cidata`, `EMUCFG`): 1–32 of A–Z, a–z, 0–9 and `_`.
 * The primary descriptor gets it upper-cased; Joliet keeps its case but holds only 16
 * characters, so longer labels are cut there (documented truncation).
 *
 * @throws {EmuError} `iso_invalid_input` naming the bad character.
 */
export function volumeLabel(label: string): VolumeLabel {
  if (label.length === 0 || label.length > LABEL_MAX) {
    throw new EmuError(
      "iso_invalid_input",
      `Cannot use volume label "${label}": it must be 1 to ${LABEL_MAX} characters`,
      {
        hint: "Use a short label such as cidata or EMUCFG.",
      },
    );
  }
  const bad = /[^A-Za-z0-9_]/.exec(label);
  if (bad !== null) {
    throw new EmuError(
      "iso_invalid_input",
      `Cannot use volume label "${label}": character ${JSON.stringify(bad[0])} is not allowed`,
      { hint: "Volume labels may use letters, digits and '_' only (ISO 9660 d-characters)." },
    );
  }
  return { iso: label.toUpperCase(), joliet: label.slice(0, JOLIET_LABEL_MAX) };
}
