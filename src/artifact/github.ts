/**
 * GitHub releases as an image source (docs/architecture.md, «Images and releases»):
 * `github:owner/repo`. The release (latest, or the tag `v<version>` / `<version>`) is read from the
 * REST API and turned into the same release record a manifest holds, so it is verified the same
 * way: its `SHA256SUMS` asset against `SHA256SUMS.sig` with the release key, the image asset
 * against `SHA256SUMS`. A token (`GITHUB_TOKEN`, `GH_TOKEN`, else `gh auth token`) is sent when
 * there is one: private repositories need it, public ones get higher limits.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { runProgram } from "../process.ts";
import { imageArtifactOfFile } from "./descriptor.ts";
import { type Manifest, printable, type Release } from "./manifest.ts";
import { compareVersions, isPrerelease, parseVersion } from "./versions.ts";

/** `owner/repo` of a `github:` source, and the prefix of its release tags. */
export interface GithubRepo {
  owner: string;
  repo: string;
  /**
   * Release tags are `<tagPrefix><version>`. Absent: `v<version>` or `<version>`, and
   * `latest` is the repository's latest release. Set (`github:OWNER/REPO#demo-v`): only
   * tags with that prefix are releases of this source, and `latest` is the newest stable
   * one among them — one repository can carry several series (emu and its demo stack).
   */
  tagPrefix?: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/**
 * Parses `github:owner/repo`, optionally with `#TAGPREFIX`.
 *
 * @example
 * ```ts
 * import { parseGithubSource } from "./github.ts";
 * const r = parseGithubSource("github:acme/stack");
 * if (r.owner !== "acme" || r.repo !== "stack" || r.tagPrefix !== undefined) throw new Error();
 * if (parseGithubSource("github:acme/emu#demo-v").tagPrefix !== "demo-v") throw new Error();
 * ```
 *
 * @throws {EmuError} `config_invalid` for anything else.
 */
export function parseGithubSource(source: string): GithubRepo {
  const m = /^github:([^/#]+)\/([^/#]+)(?:#([A-Za-z0-9._-]{1,32}))?$/.exec(source);
  if (!m || !NAME.test(m[1]) || !NAME.test(m[2]) || m[1].startsWith(".") || m[2] === "..") {
    throw new EmuError(
      "config_invalid",
      `Cannot use image source ${source}: expected github:OWNER/REPO (or github:OWNER/REPO#TAGPREFIX)`,
      {
        hint:
          "For example github:acme/stack (the repository whose releases carry the image), or github:acme/emu#demo-v for tags demo-v1.0.0, …",
      },
    );
  }
  return { owner: m[1], repo: m[2], ...(m[3] === undefined ? {} : { tagPrefix: m[3] }) };
}

/** The API base: `EMU_GITHUB_API` (GitHub Enterprise, tests), else api.github.com. */
export function githubApi(env: Record<string, string | undefined>): string {
  return (env.EMU_GITHUB_API || "https://api.github.com").replace(/\/$/, "");
}

/** A token from the environment, else from the GitHub CLI when it is logged in. */
export async function githubToken(env: Record<string, string | undefined>): Promise<string | null> {
  const fromEnv = env.GITHUB_TOKEN || env.GH_TOKEN;
  if (fromEnv) return fromEnv;
  const r = await runProgram("gh", ["auth", "token"]);
  const token = r.stdout.trim();
  return r.ok && token !== "" ? token : null;
}

/** Request headers for the API (and, with a token, for asset downloads). */
export function githubHeaders(token: string | null): Record<string, string> {
  const headers: Record<string, string> = {
    accept: "application/vnd.github+json",
    "x-github-api-version": "2022-11-28",
  };
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}

interface ApiAsset {
  name: string;
  url: string;
  browser_download_url: string;
}

interface ApiRelease {
  tag_name: string;
  published_at: string | null;
  draft?: boolean;
  assets: ApiAsset[];
}

/** A GitHub release as a manifest release, and the asset name behind each URL. */
export interface GithubRelease {
  release: Release;
  /** API asset URLs end in a number, not the file name that SHA256SUMS lists. */
  fileNames: Map<string, string>;
}

/**
 * A GitHub release as a manifest release. Assets are fetched from their API URL with
 * `Accept: application/octet-stream` when there is a token (private repositories), else
 * from their public download URL.
 */
export function releaseFromApi(
  api: ApiRelease,
  withToken: boolean,
  tagPrefix?: string,
): GithubRelease {
  const urlOf = (a: ApiAsset) => withToken ? a.url : a.browser_download_url;
  const find = (name: string) => api.assets.find((a) => a.name === name);
  const sums = find("SHA256SUMS");
  const sig = find("SHA256SUMS.sig");
  const tag = tagPrefix !== undefined && api.tag_name.startsWith(tagPrefix)
    ? api.tag_name.slice(tagPrefix.length)
    : api.tag_name;
  const version = tagPrefix !== undefined && tag === api.tag_name ? null : parseVersion(tag);
  if (version === null) {
    throw new EmuError(
      "release_not_found",
      `Cannot use GitHub release ${JSON.stringify(printable(api.tag_name))}: its tag is not ${
        tagPrefix ?? "v"
      }MAJOR.MINOR.PATCH`,
      { hint: `emu orders releases by version: tag them ${tagPrefix ?? "v"}MAJOR.MINOR.PATCH.` },
    );
  }
  if (!sums || !sig) {
    throw new EmuError(
      "checksums_invalid",
      `Cannot use GitHub release ${api.tag_name}: it has no ${
        !sums ? "SHA256SUMS" : "SHA256SUMS.sig"
      } asset`,
      { hint: "emu installs only signed releases: publish SHA256SUMS and SHA256SUMS.sig with it." },
    );
  }
  const artifacts: Record<string, string> = {};
  for (const asset of api.assets) {
    const name = imageArtifactOfFile(asset.name);
    if (name !== null) artifacts[name] = urlOf(asset);
  }
  return {
    release: {
      version,
      released_at: printable(api.published_at ?? ""),
      sha256sums_url: urlOf(sums),
      sha256sums_sig_url: urlOf(sig),
      artifacts,
    },
    fileNames: new Map(api.assets.map((a) => [urlOf(a), a.name])),
  };
}

/** GET on the API; a network failure is a clear error, any HTTP status is returned. */
export async function githubGet(
  url: string,
  options: { api: string; token: string | null; signal?: AbortSignal },
): Promise<Response> {
  try {
    return await fetch(url, {
      headers: githubHeaders(options.token),
      signal: options.signal ?? AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new EmuError(
      "download_failed",
      `Cannot reach the GitHub API (${options.api}): ${(err as Error).message}`,
      { hint: "Check the network." },
    );
  }
}

/**
 * Fetches the release `version` (`latest` or a version, with or without `v`). With a tag
 * prefix, `latest` is the newest stable release among the prefixed tags.
 */
export async function fetchGithubRelease(
  repo: GithubRepo,
  version: string,
  options: { api: string; token: string | null; signal?: AbortSignal },
): Promise<GithubRelease> {
  const base = `${options.api}/repos/${repo.owner}/${repo.repo}/releases`;
  const wanted = version.replace(/^v/, "");
  if (repo.tagPrefix !== undefined && version === "latest") {
    const newest = (await listGithubReleases(repo, options))
      .find((r) => !isPrerelease(r.release.version));
    if (newest) return newest;
  }
  const paths = repo.tagPrefix !== undefined
    ? (version === "latest" ? [] : [`tags/${repo.tagPrefix}${wanted}`])
    : version === "latest"
    ? ["latest"]
    : [`tags/v${wanted}`, `tags/${wanted}`];
  for (const path of paths) {
    const response = await githubGet(`${base}/${path}`, options);
    if (response.status === 404) {
      await response.body?.cancel();
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new EmuError(
        "download_failed",
        `Cannot read the releases of ${repo.owner}/${repo.repo}: GitHub answered ${response.status}`,
        {
          hint: response.status === 401 || response.status === 403
            ? "Set GITHUB_TOKEN (or log in with `gh auth login`) with read access to the repository."
            : "Try again later.",
        },
      );
    }
    return releaseFromApi(
      await response.json() as ApiRelease,
      options.token !== null,
      repo.tagPrefix,
    );
  }
  const tags = repo.tagPrefix === undefined
    ? "v<version> or <version>"
    : `${repo.tagPrefix}<version>`;
  throw new EmuError(
    "release_not_found",
    `Cannot find ${
      version === "latest" ? "a published release" : `release ${version}`
    } of ${repo.owner}/${repo.repo}${
      repo.tagPrefix === undefined ? "" : ` (tags ${repo.tagPrefix}…)`
    } on GitHub`,
    {
      hint: options.token === null
        ? `Check the repository and version (tags ${tags}); a private repository needs GITHUB_TOKEN or \`gh auth login\`.`
        : `Check the repository name and the version (tags ${tags}).`,
    },
  );
}

/**
 * Every published release of the repository that emu could pull, newest first: drafts,
 * releases without `SHA256SUMS`/`SHA256SUMS.sig`, and tags that are not
 * `<prefix><version>` are left out.
 */
export async function listGithubReleases(
  repo: GithubRepo,
  options: { api: string; token: string | null; signal?: AbortSignal },
): Promise<GithubRelease[]> {
  const url = `${options.api}/repos/${repo.owner}/${repo.repo}/releases?per_page=100`;
  const response = await githubGet(url, options);
  if (!response.ok) {
    await response.body?.cancel();
    throw new EmuError(
      response.status === 404 ? "release_not_found" : "download_failed",
      `Cannot list the releases of ${repo.owner}/${repo.repo}: GitHub answered ${response.status}`,
      {
        hint: response.status === 404 || response.status === 401 || response.status === 403
          ? "Check the repository name; a private repository needs GITHUB_TOKEN or `gh auth login`."
          : "Try again later.",
      },
    );
  }
  const releases: GithubRelease[] = [];
  for (const api of await response.json() as ApiRelease[]) {
    if (api.draft) continue;
    if (repo.tagPrefix !== undefined && !api.tag_name.startsWith(repo.tagPrefix)) continue;
    try {
      releases.push(releaseFromApi(api, options.token !== null, repo.tagPrefix));
    } catch {
      // Not signed or not a version: emu would refuse to pull it, so it is not listed.
    }
  }
  return releases.sort((a, b) => compareVersions(b.release.version, a.release.version));
}

/** {@linkcode listGithubReleases} as a manifest: `latest_stable` the newest stable one. */
export async function fetchGithubReleases(
  repo: GithubRepo,
  options: { api: string; token: string | null; signal?: AbortSignal },
): Promise<Manifest> {
  const releases = (await listGithubReleases(repo, options)).map((r) => r.release);
  const stable = releases.find((r) => !isPrerelease(r.version)) ?? releases[0];
  return { schema_version: 1, latest_stable: stable?.version ?? "", releases };
}
