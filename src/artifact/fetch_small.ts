/**
 * Reading small metadata files (manifest, SHA256SUMS, signatures) from a URL or a local
 * path, with a size cap enforced while reading.
 *
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { EmuError } from "../errors.ts";

/** Whether `source` is a URL emu fetches (https, http or file). */
export function isUrl(source: string): boolean {
  return /^(https?|file):/.test(source);
}

/** Reads at most `maxBytes` from `source` (URL or path); more is an error naming `what`. */
export async function fetchSmall(
  source: string,
  maxBytes: number,
  what: string,
  signal?: AbortSignal,
  headers?: Record<string, string>,
): Promise<Uint8Array<ArrayBuffer>> {
  let stream: ReadableStream<Uint8Array>;
  if (/^https?:/.test(source)) {
    let response: Response;
    try {
      response = await fetch(source, {
        headers,
        signal: signal ?? AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new EmuError(
        "download_failed",
        `Cannot fetch ${what} from ${source}: ${(err as Error).message}`,
        {
          hint: "Check the network and the image source URL.",
        },
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new EmuError(
        "download_failed",
        `Cannot fetch ${what} from ${source}: the server answered ${response.status}`,
        {
          hint: response.status === 404
            ? "Check the image source URL and the version."
            : "Check the URL and your access to it.",
        },
      );
    }
    stream = response.body!;
  } else {
    const path = source.startsWith("file:") ? new URL(source).pathname : source;
    try {
      stream = (await Deno.open(path, { read: true })).readable;
    } catch (err) {
      throw new EmuError(
        "download_failed",
        `Cannot read ${what} at ${path}: ${(err as Error).message}`,
      );
    }
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > maxBytes) {
      await stream.cancel().catch(() => {});
      const code = what === "the release manifest" ? "manifest_too_large" : "download_failed";
      throw new EmuError(
        code,
        `Cannot use ${what} from ${source}: it is larger than ${maxBytes} bytes`,
        {
          hint: "Check that the source points at the right file.",
        },
      );
    }
    chunks.push(chunk);
  }
  return concatBytes(chunks);
}
