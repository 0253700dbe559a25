/**
 * A pure-TypeScript ISO 9660 writer with Joliet and Rock Ridge, for cloud-init seeds
 * (`cidata`) and emu's runtime config disk (`EMUCFG`).
 *
 * - Nested directories, multi-sector directories, L and M path tables, records sorted
 *   as ECMA-119 9.3 requires.
 * - ISO level-2 names (d-characters, unique per directory), Joliet names (UCS-2, at most
 *   64 code units), Rock Ridge names and POSIX modes (what Linux shows).
 * - Deterministic: the same entries, label and date give the same bytes.
 * - Files are streamed; files over 4 GiB − 1 and trees deeper than 8 levels are refused.
 *
 * @module
 */
export { entriesFromDirectory } from "./from_directory.ts";
export { JOLIET_LABEL_MAX, JOLIET_MAX_UNITS, LABEL_MAX, volumeLabel } from "./names.ts";
export { type IsoEntry, MAX_DEPTH, MAX_FILE_SIZE } from "./tree.ts";
export {
  isoDate,
  type IsoWriteOptions,
  type IsoWriteResult,
  writeIso,
  writeIsoFile,
} from "./writer.ts";
