/**
 * Pulling from a `github:owner/repo` source: a release (verified like a manifest
 * release) or, with `--pr`/`--run`, a CI artifact. One place resolves the repository, the
 * API base and the token for both.
 *
 * @module
 */
import { pullCiArtifact } from "./ci_artifact.ts";
import {
  fetchGithubRelease,
  githubApi,
  githubHeaders,
  githubToken,
  parseGithubSource,
} from "./github.ts";
import type { InstallTarget, PullResult } from "./install.ts";
import { pullRelease } from "./release_pull.ts";
import { checkNotRollback, rememberRelease } from "./release_memory.ts";

/** Options of {@linkcode pullGithubImage}. */
export interface GithubPullOptions extends InstallTarget {
  /** `github:owner/repo`. */
  source: string;
  version: string;
  publicKey: string | undefined;
  /** Token and API base come from here. */
  env: Record<string, string | undefined>;
  /** The image of this pull request's CI, or of this run, instead of a release. */
  pr?: number;
  run?: number;
  /** The file that remembers each source's newest release (rollback protection). */
  releasesSeen: string;
}

/** Installs (or finds installed) the image of a GitHub release, or of a CI run. */
export async function pullGithubImage(options: GithubPullOptions): Promise<PullResult> {
  const { env, releasesSeen, ...target } = options;
  const repo = parseGithubSource(options.source);
  const api = githubApi(env);
  const token = await githubToken(env);
  if ((options.pr ?? options.run) !== undefined) {
    return await pullCiArtifact({ ...target, repo, api, token });
  }
  const { release, fileNames } = await fetchGithubRelease(repo, options.version, {
    api,
    token,
    signal: options.signal,
  });
  // The same owner/repo on another API (GitHub Enterprise, a stand-in) is another source.
  const sourceIdentity = `${options.source}@${api}`;
  if (options.version === "latest") {
    await checkNotRollback(releasesSeen, sourceIdentity, release.version, {
      named: false,
      flag: "--version",
    });
    await rememberRelease(releasesSeen, sourceIdentity, release.version);
  }
  return await pullRelease(release, {
    ...target,
    headers: token ? { ...githubHeaders(token), accept: "application/octet-stream" } : {},
    sourceIdentity,
    fileNameOf: (url) => fileNames.get(url),
  });
}
