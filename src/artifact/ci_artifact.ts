/**
 * Stack images from CI (docs/architecture.md, «Images and releases»): `emu pull --pr N` / `--run
 * ID` with a `github:owner/repo` source take the image from a GitHub Actions artifact — the newest
 * successful run of the pull request's head commit, or the given run. The artifact zip is verified
 * against the sha256 digest GitHub reports for it (and the image inside against a SHA256SUMS in the
 * zip, when there is one), unpacked, decompressed when it is `.zst`, and installed like any image.
 * CI builds are not release-signed; the digest comes over the authenticated API. Artifacts need a
 * token.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { download } from "./download.ts";
import { githubGet, githubHeaders, type GithubRepo } from "./github.ts";
import { readInstalledImage } from "./cache.ts";
import { installStaged, type InstallTarget, type PullResult } from "./install.ts";
import { isQcow2File } from "./qcow2.ts";
import { parseSha256Sums } from "./sha256sums.ts";
import { createHash } from "node:crypto";
import { IMAGE_FILES } from "../config/filenames.ts";

/** One workflow artifact as the API lists it. */
export interface ApiArtifact {
  id: number;
  name: string;
  expired: boolean;
  archive_download_url: string;
  digest?: string | null;
}

const ARCH_WORDS = { x86_64: ["amd64", "x86_64", "x64"], aarch64: ["arm64", "aarch64"] } as const;

/**
 * The artifact that holds the image for `arch`: not expired, and its name mentions the
 * architecture; else the only one whose name mentions "image"; else the only one.
 *
 * @example
 * ```ts
 * import { chooseImageArtifact } from "./ci_artifact.ts";
 * const a = (id: number, name: string) => ({ id, name, expired: false, archive_download_url: "" });
 * if (chooseImageArtifact([a(1, "logs"), a(2, "image-amd64"), a(3, "image-arm64")], "x86_64")?.id !== 2) throw new Error();
 * ```
 */
export function chooseImageArtifact(
  artifacts: readonly ApiArtifact[],
  arch: "x86_64" | "aarch64",
): ApiArtifact | null {
  const live = artifacts.filter((a) => !a.expired);
  const byArch = live.filter((a) => ARCH_WORDS[arch].some((w) => a.name.toLowerCase().includes(w)));
  if (byArch.length >= 1) return byArch[0];
  const images = live.filter((a) => /image|qcow2/i.test(a.name));
  if (images.length === 1) return images[0];
  return live.length === 1 ? live[0] : null;
}

/** Options of {@linkcode pullCiArtifact}. */
export interface CiPullOptions extends InstallTarget {
  /** `github:owner/repo`, recorded in image.json. */
  source: string;
  repo: GithubRepo;
  api: string;
  token: string | null;
  pr?: number;
  run?: number;
}

async function apiJson<T>(url: string, o: CiPullOptions, what: string): Promise<T> {
  const response = await githubGet(url, o);
  if (!response.ok) {
    await response.body?.cancel();
    throw new EmuError(
      response.status === 404 ? "release_not_found" : "download_failed",
      `Cannot read ${what} of ${o.repo.owner}/${o.repo.repo}: GitHub answered ${response.status}`,
      { hint: "Check the number and that the token can read the repository's Actions." },
    );
  }
  return await response.json() as T;
}

/** Finds the run and its image artifact. */
async function locate(o: CiPullOptions): Promise<{ run: number; artifact: ApiArtifact }> {
  const base = `${o.api}/repos/${o.repo.owner}/${o.repo.repo}`;
  const artifactsOf = async (run: number) =>
    (await apiJson<{ artifacts: ApiArtifact[] }>(
      `${base}/actions/runs/${run}/artifacts?per_page=100`,
      o,
      `the artifacts of run ${run}`,
    )).artifacts;
  if (o.run !== undefined) {
    const artifact = chooseImageArtifact(await artifactsOf(o.run), o.arch);
    if (artifact === null) {
      throw new EmuError("release_not_found", `Cannot find an image artifact in run ${o.run}`, {
        hint: `Name the artifact after the architecture (e.g. image-${
          ARCH_WORDS[o.arch][0]
        }); expired artifacts cannot be pulled.`,
      });
    }
    return { run: o.run, artifact };
  }
  const pull = await apiJson<{ head: { sha: string } }>(
    `${base}/pulls/${o.pr}`,
    o,
    `pull request ${o.pr}`,
  );
  const runs = await apiJson<{ workflow_runs: { id: number }[] }>(
    `${base}/actions/runs?head_sha=${pull.head.sha}&status=success&per_page=20`,
    o,
    `the runs of pull request ${o.pr}`,
  );
  for (const run of runs.workflow_runs) {
    const artifact = chooseImageArtifact(await artifactsOf(run.id), o.arch);
    if (artifact) return { run: run.id, artifact };
  }
  throw new EmuError(
    "release_not_found",
    `Cannot find an image artifact for pull request ${o.pr}: no successful run of ${
      pull.head.sha.slice(0, 12)
    } has one`,
    { hint: "Wait for its CI to finish, or pull a run with --run ID." },
  );
}

/** Unpacks the image (and a SHA256SUMS, if any) from the zip at `zip` into `dir`. */
async function unpack(zip: string, dir: string): Promise<{ image: string; name: string }> {
  // Loaded here, not at start-up: only `emu pull --pr/--run` unzips.
  const { Unzip, UnzipInflate } = await import("fflate");
  const entries: { name: string; path: string; hash: ReturnType<typeof createHash> }[] = [];
  let failure: Error | null = null;
  const unzip = new Unzip((file) => {
    const base = file.name.split("/").pop()!;
    if (!/\.qcow2(\.zst)?$/.test(base) && base !== "SHA256SUMS") return;
    const path = join(dir, `entry-${entries.length}`);
    const out = Deno.openSync(path, { write: true, createNew: true });
    const entry = { name: base, path, hash: createHash("sha256") };
    entries.push(entry);
    file.ondata = (err, chunk, final) => {
      if (err) failure ??= err;
      else {
        entry.hash.update(chunk);
        let at = 0;
        while (at < chunk.length) at += out.writeSync(chunk.subarray(at));
      }
      if (final || err) out.close();
    };
    file.start();
  });
  unzip.register(UnzipInflate);
  using input = await Deno.open(zip, { read: true });
  const buffer = new Uint8Array(1024 * 1024);
  let previous: Uint8Array | null = null;
  while (true) {
    const n = await input.read(buffer);
    if (previous) unzip.push(previous, n === null);
    if (failure) break;
    if (n === null) break;
    previous = buffer.slice(0, n);
  }
  if (failure) {
    throw new EmuError(
      "download_failed",
      `Cannot unpack the CI artifact: ${(failure as Error).message}`,
    );
  }
  const images = entries.filter((e) => e.name !== "SHA256SUMS");
  if (images.length !== 1) {
    throw new EmuError(
      "image_invalid",
      `Cannot use the CI artifact: it holds ${
        images.length === 0 ? "no" : images.length
      } qcow2 image${images.length === 1 ? "" : "s"} (.qcow2 or .qcow2.zst)`,
      { hint: "Upload exactly one image per architecture artifact." },
    );
  }
  const [image] = images;
  const sumsEntry = entries.find((e) => e.name === "SHA256SUMS");
  if (sumsEntry) {
    const expected = parseSha256Sums(await Deno.readTextFile(sumsEntry.path)).get(image.name);
    const actual = image.hash.digest("hex");
    if (expected === undefined) {
      throw new EmuError(
        "checksums_invalid",
        `Cannot install ${image.name} from the CI artifact: the artifact's SHA256SUMS does not list it`,
        { hint: "The artifact is inconsistent; nothing was installed." },
      );
    }
    if (expected !== actual) {
      throw new EmuError(
        "checksum_mismatch",
        `Cannot install ${image.name} from the CI artifact: its sha256 is ${actual}, the artifact's SHA256SUMS says ${expected}`,
        { hint: "The artifact is inconsistent; nothing was installed." },
      );
    }
  }
  return { image: image.path, name: image.name };
}

/** Installs (or finds installed) the image of a pull request's CI or of a run. */
export async function pullCiArtifact(o: CiPullOptions): Promise<PullResult> {
  if (!o.token) {
    throw new EmuError(
      "download_failed",
      `Cannot download CI artifacts of ${o.repo.owner}/${o.repo.repo}: GitHub serves them only with a token`,
      { hint: "Set GITHUB_TOKEN, or log in with `gh auth login`." },
    );
  }
  const { run, artifact } = await locate(o);
  const version = o.pr !== undefined ? `pr-${o.pr}` : `run-${run}`;
  // The API base is part of the key: the same owner/repo elsewhere is another source.
  const api = createHash("sha256").update(o.api).digest("hex").slice(0, 8);
  const id = `github-${o.repo.owner}-${o.repo.repo}-run${run}-${artifact.name}-${api}`.replace(
    /[^A-Za-z0-9._-]/g,
    "_",
  );
  const dir = join(o.imagesDir, id);
  const digest = /^sha256:([0-9a-f]{64})$/.exec(artifact.digest ?? "")?.[1];
  if (digest === undefined) {
    throw new EmuError(
      "checksums_invalid",
      `Cannot verify CI artifact ${artifact.name} of run ${run}: GitHub reports no sha256 digest for it`,
      { hint: "Older GitHub Enterprise versions do not: publish a signed release instead." },
    );
  }
  const installed = await readInstalledImage(dir).catch(() => null);
  if (
    installed && !o.force && installed.source === o.source && installed.published_sha256 === digest
  ) return { image: installed, cached: true };
  o.onMessage?.(
    `pulling CI artifact ${artifact.name} of run ${run}${
      o.pr !== undefined ? ` (pull request ${o.pr})` : ""
    }`,
  );
  const staging = join(o.imagesDir, `.pull-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const zip = join(staging, "artifact.zip");
    await download({
      url: artifact.archive_download_url,
      dest: zip,
      partDir: o.downloadsDir,
      partId: digest,
      sha256: digest,
      sha256Origin: "GitHub's artifact digest",
      zstd: false,
      signal: o.signal,
      onProgress: o.onProgress,
      headers: githubHeaders(o.token),
    });
    const { image, name } = await unpack(zip, staging);
    const disk = join(staging, IMAGE_FILES.disk);
    if (name.endsWith(".zst")) {
      await download({
        url: new URL(`file://${image}`).href,
        dest: disk,
        partDir: o.downloadsDir,
        partId: `${digest}-unpacked`,
        sha256: null,
        zstd: true,
        signal: o.signal,
      });
    } else {
      await Deno.rename(image, disk);
    }
    if (!await isQcow2File(disk)) {
      throw new EmuError(
        "image_invalid",
        `Cannot use ${name} from the CI artifact: it is not a qcow2 image`,
      );
    }
    return await installStaged(staging, dir, {
      name: name.replace(/(\.qcow2)?(\.zst)?$/, ""),
      version,
      arch: o.arch,
      size: (await Deno.stat(disk)).size,
      source: o.source,
      published_sha256: digest,
    });
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}
