/**
 * What kind of image source a profile names, decided from the text alone, so that a
 * command can tell without loading the code that pulls each kind.
 *
 * @module
 */
import { isUrl } from "./fetch_small.ts";

/**
 * Whether `source` names a plain qcow2 image (a file or URL ending in `.qcow2` or
 * `.qcow2.zst`) rather than a release manifest, a GitHub repository or an image directory.
 *
 * @example
 * ```ts
 * import { isPlainImageSource } from "./source_kind.ts";
 * if (!isPlainImageSource("https://example.com/a.qcow2.zst?x=1")) throw new Error();
 * if (isPlainImageSource("https://example.com/manifest.json")) throw new Error();
 * ```
 */
export function isPlainImageSource(source: string): boolean {
  let path = source;
  if (isUrl(source)) {
    try {
      path = new URL(source).pathname;
    } catch {
      return false;
    }
  }
  return /\.qcow2(\.zst)?$/.test(path);
}

/**
 * Whether `source` is a GitHub repository's releases: `github:owner/repo[#TAGPREFIX]`.
 *
 * @example
 * ```ts
 * import { isGithubSource } from "./source_kind.ts";
 * if (!isGithubSource("github:acme/shop")) throw new Error();
 * ```
 */
export function isGithubSource(source: string): boolean {
  return source.startsWith("github:");
}
