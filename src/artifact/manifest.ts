/**
 * The release manifest (`schema_version` 1; docs/architecture.md, «Images and releases»): parsing
 * with a size cap, strict validation, and choosing a release and an artifact. Hashes never come
 * from here: they come from the release's signed SHA256SUMS.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { parseJsonObject } from "./_json.ts";
import { parseVersion } from "./versions.ts";

/** Largest manifest emu reads. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** The manifest schema this emu understands. */
export const MANIFEST_SCHEMA = 1;

/** One release. */
export interface Release {
  version: string;
  released_at: string;
  sha256sums_url: string;
  sha256sums_sig_url: string;
  /** Artifact name → URL, e.g. `image-amd64` → `…/stack-amd64.qcow2.zst`. */
  artifacts: Record<string, string>;
}

/** A validated manifest. */
export interface Manifest {
  schema_version: 1;
  latest_stable: string;
  releases: Release[];
}

function invalid(source: string, problem: string): EmuError {
  return new EmuError("manifest_invalid", `Cannot use the manifest ${source}: ${problem}`, {
    hint: "Check the image source; the release manifest may be damaged or not a manifest at all.",
  });
}

/** Whether `name` is a plain file name: no path separator, no `..`, no control characters. */
export function isPlainName(name: string): boolean {
  // deno-lint-ignore no-control-regex
  return name !== "" && name !== "." && name !== ".." && !/[\/\\\x00-\x1f]/.test(name) &&
    !name.includes("..");
}

/**
 * `text` without control characters (C0, DEL, C1): what a manifest or a release says is
 * printed to a terminal, and must not move its cursor or change its colours.
 *
 * @example
 * ```ts
 * import { printable } from "./manifest.ts";
 * if (printable("1.0\x1b[2J") !== "1.0[2J") throw new Error();
 * ```
 */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
}

/** Where a manifest came from decides which URLs it may point at. */
function sourceProtocol(source: string): "https:" | "http:" | "local" {
  if (/^https:/i.test(source)) return "https:";
  if (/^http:/i.test(source)) return "http:";
  return "local";
}

function url(value: unknown, field: string, source: string): string {
  if (typeof value !== "string") throw invalid(source, `${field} must be a URL`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw invalid(source, `${field} is not a URL: ${JSON.stringify(printable(value))}`);
  }
  if (!["https:", "http:", "file:"].includes(parsed.protocol)) {
    throw invalid(source, `${field} must be an https, http or file URL`);
  }
  const from = sourceProtocol(source);
  // A server may name only what it serves: not the user's own files, and an https
  // manifest not a plain-http download that anyone on the path could replace.
  if (from !== "local" && parsed.protocol === "file:") {
    throw invalid(source, `${field} is a file: URL, which a remote manifest may not use`);
  }
  if (from === "https:" && parsed.protocol !== "https:") {
    throw invalid(source, `${field} downgrades https to ${parsed.protocol.slice(0, -1)}`);
  }
  return parsed.href;
}

function version(value: unknown, field: string, source: string): string {
  if (typeof value !== "string" || parseVersion(value) === null) {
    throw invalid(
      source,
      `${field} must be a semantic version such as 1.4.0, got ${
        JSON.stringify(typeof value === "string" ? printable(value) : value)
      }`,
    );
  }
  return value;
}

/**
 * Parses manifest text fetched from `source` (named in errors).
 *
 * @throws {EmuError} `manifest_invalid`, `manifest_too_large`, or `emu_too_old` for a newer schema.
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * const m = parseManifest(JSON.stringify({ schema_version: 1, latest_stable: "1.0.0", releases: [{
 *   version: "1.0.0", released_at: "2026-11-01T00:00:00Z", sha256sums_url: "https://x/SHA256SUMS",
 *   sha256sums_sig_url: "https://x/SHA256SUMS.sig", artifacts: { "image-amd64": "https://x/a.qcow2.zst" } }] }), "test");
 * if (m.releases[0].artifacts["image-amd64"] !== "https://x/a.qcow2.zst") throw new Error();
 * ```
 */
export function parseManifest(text: string, source: string): Manifest {
  if (new TextEncoder().encode(text).length > MAX_MANIFEST_BYTES) {
    throw new EmuError(
      "manifest_too_large",
      `Cannot use the manifest ${source}: it is larger than ${MAX_MANIFEST_BYTES} bytes`,
      {
        hint: "A release manifest is a few KiB; check that the source URL points at the manifest.",
      },
    );
  }
  const raw = parseJsonObject(text, (problem) => invalid(source, problem));
  if (typeof raw.schema_version !== "number" || !Number.isInteger(raw.schema_version)) {
    throw invalid(source, "schema_version must be an integer");
  }
  if (raw.schema_version > MANIFEST_SCHEMA) {
    throw new EmuError(
      "emu_too_old",
      `Cannot read the manifest ${source}: it uses schema_version ${raw.schema_version}, this emu understands ${MANIFEST_SCHEMA}`,
      {
        hint: "Upgrade emu (emu upgrade, or brew upgrade emu).",
      },
    );
  }
  if (raw.schema_version !== MANIFEST_SCHEMA) {
    throw invalid(source, `schema_version ${raw.schema_version} is not supported`);
  }
  const latest = version(raw.latest_stable, "latest_stable", source);
  if (!Array.isArray(raw.releases)) throw invalid(source, "releases must be an array");
  const seen = new Set<string>();
  const releases = raw.releases.map((r: unknown, i: number): Release => {
    const field = `releases[${i}]`;
    if (typeof r !== "object" || r === null) throw invalid(source, `${field} must be an object`);
    const rel = r as Record<string, unknown>;
    const relVersion = version(rel.version, `${field}.version`, source);
    if (seen.has(relVersion)) throw invalid(source, `version ${relVersion} is listed twice`);
    seen.add(relVersion);
    if (
      typeof rel.artifacts !== "object" || rel.artifacts === null || Array.isArray(rel.artifacts)
    ) {
      throw invalid(source, `${field}.artifacts must be an object`);
    }
    const artifacts: Record<string, string> = {};
    for (const [name, value] of Object.entries(rel.artifacts as Record<string, unknown>)) {
      if (!isPlainName(name)) {
        throw invalid(
          source,
          `${field}.artifacts has a name that is not a plain name: ${
            JSON.stringify(printable(name))
          }`,
        );
      }
      artifacts[name] = url(value, `${field}.artifacts.${name}`, source);
      const fileName = decodeURIComponent(new URL(artifacts[name]).pathname.split("/").pop() ?? "");
      if (!isPlainName(fileName)) {
        throw invalid(source, `${field}.artifacts.${name} does not end in a plain file name`);
      }
    }
    return {
      version: relVersion,
      released_at: typeof rel.released_at === "string" ? printable(rel.released_at) : "",
      sha256sums_url: url(rel.sha256sums_url, `${field}.sha256sums_url`, source),
      sha256sums_sig_url: url(rel.sha256sums_sig_url, `${field}.sha256sums_sig_url`, source),
      artifacts,
    };
  });
  if (!seen.has(latest)) {
    throw invalid(source, `latest_stable ${latest} is not among the releases`);
  }
  return { schema_version: 1, latest_stable: latest, releases };
}

/**
 * The release for `version` (`latest` means `latest_stable`).
 *
 * @throws {EmuError} `release_not_found` listing the versions there are.
 */
export function pickRelease(manifest: Manifest, version: string, flag = "--version"): Release {
  const wanted = version === "latest" ? manifest.latest_stable : version.replace(/^v/, "");
  const release = manifest.releases.find((r) => r.version.replace(/^v/, "") === wanted);
  if (release === undefined) {
    throw new EmuError(
      "release_not_found",
      `Cannot find release ${version}: the manifest has ${
        manifest.releases.map((r) => r.version).join(", ")
      }`,
      {
        hint: `Pick one of those with ${flag}, or leave it out for the latest stable release.`,
      },
    );
  }
  return release;
}
