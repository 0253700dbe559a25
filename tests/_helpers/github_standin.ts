/**
 * A stand-in for the GitHub REST API's release endpoints on 127.0.0.1 (what emu reads
 * with EMU_GITHUB_API): `releases`, `releases/latest`, `releases/tags/<tag>`, and asset
 * downloads by their public URL, for releases whose assets are files in a directory.
 */

/** One release: its tag and its assets (name → bytes). */
export interface StandinRelease {
  tag: string;
  assets: Record<string, Uint8Array<ArrayBuffer>>;
  prerelease?: boolean;
}

/** A running stand-in. */
export interface GithubStandin {
  /** Base URL for EMU_GITHUB_API. */
  api: string;
  /** Releases of `owner/repo`, newest first as GitHub lists them. */
  releases: StandinRelease[];
  /** Asset paths fetched so far. */
  downloads: string[];
  close(): Promise<void>;
}

/** Reads every file of `dir` as assets. */
export async function assetsOf(dir: string): Promise<Record<string, Uint8Array<ArrayBuffer>>> {
  const assets: Record<string, Uint8Array<ArrayBuffer>> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) assets[e.name] = await Deno.readFile(`${dir}/${e.name}`);
  }
  return assets;
}

/** Starts the stand-in for repository `owner/repo`. */
export function startGithubStandin(owner: string, repo: string): GithubStandin {
  const releases: StandinRelease[] = [];
  const downloads: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    const base = url.origin;
    const body = (r: StandinRelease) => ({
      tag_name: r.tag,
      draft: false,
      prerelease: r.prerelease === true,
      published_at: "2026-11-20T00:00:00Z",
      assets: Object.keys(r.assets).sort().map((name, i) => ({
        name,
        url: `${base}/repos/${owner}/${repo}/releases/assets/${r.tag}/${i}`,
        browser_download_url: `${base}/${owner}/${repo}/releases/download/${r.tag}/${name}`,
      })),
    });
    const prefix = `/repos/${owner}/${repo}/releases`;
    if (url.pathname === prefix) return Response.json(releases.map(body));
    if (url.pathname === `${prefix}/latest`) {
      const latest = releases.find((r) => !r.prerelease);
      return latest
        ? Response.json(body(latest))
        : Response.json({ message: "Not Found" }, { status: 404 });
    }
    const tag = url.pathname.startsWith(`${prefix}/tags/`)
      ? decodeURIComponent(url.pathname.slice(`${prefix}/tags/`.length))
      : null;
    if (tag !== null) {
      const r = releases.find((x) => x.tag === tag);
      return r ? Response.json(body(r)) : Response.json({ message: "Not Found" }, { status: 404 });
    }
    const dl = new RegExp(`^/${owner}/${repo}/releases/download/([^/]+)/(.+)$`).exec(url.pathname);
    if (dl) {
      const r = releases.find((x) => x.tag === decodeURIComponent(dl[1]));
      const bytes = r?.assets[decodeURIComponent(dl[2])];
      downloads.push(url.pathname);
      if (bytes) {
        return new Response(bytes, { headers: { "content-length": String(bytes.length) } });
      }
    }
    return Response.json({ message: "Not Found" }, { status: 404 });
  });
  return {
    api: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    releases,
    downloads,
    close: () => server.shutdown(),
  };
}
