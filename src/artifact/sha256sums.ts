/**
 * `SHA256SUMS` (`<64 hex>  <name>` lines, as `sha256sum` writes them): strict parsing,
 * plain names only, size cap.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { isPlainName } from "./manifest.ts";

/** Largest SHA256SUMS emu reads. */
export const MAX_SHA256SUMS_BYTES = 64 * 1024;

function invalid(problem: string): EmuError {
  return new EmuError("checksums_invalid", `Cannot use SHA256SUMS: ${problem}`, {
    hint:
      "The release's checksum file is damaged; do not use this release until it is republished.",
  });
}

/**
 * Parses SHA256SUMS into name → lowercase hex digest.
 *
 * @example
 * ```ts
 * import { parseSha256Sums } from "./sha256sums.ts";
 * const sums = parseSha256Sums(`${"a".repeat(64)}  stack-amd64.qcow2.zst\n`);
 * if (sums.get("stack-amd64.qcow2.zst") !== "a".repeat(64)) throw new Error();
 * ```
 */
export function parseSha256Sums(text: string): Map<string, string> {
  if (new TextEncoder().encode(text).length > MAX_SHA256SUMS_BYTES) {
    throw invalid(`it is larger than ${MAX_SHA256SUMS_BYTES} bytes`);
  }
  if (text !== "" && !text.endsWith("\n")) {
    throw invalid("it does not end with a newline (truncated?)");
  }
  const sums = new Map<string, string>();
  text.split("\n").slice(0, -1).forEach((line, i) => {
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (match === null) throw invalid(`line ${i + 1} is not "<sha256>  <file name>"`);
    const name = match[2];
    if (!isPlainName(name)) {
      throw invalid(`line ${i + 1} names ${JSON.stringify(name)}, which is not a plain file name`);
    }
    if (sums.has(name)) throw invalid(`${name} is listed twice`);
    sums.set(name, match[1].toLowerCase());
  });
  if (sums.size === 0) throw invalid("it lists no files");
  return sums;
}
