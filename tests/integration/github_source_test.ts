/**
 * `github:owner/repo` sources through the real CLI against a stand-in for the GitHub REST
 * API: a real HTTP server on 127.0.0.1 (EMU_GITHUB_API) answering the release endpoints
 * as GitHub documents them, with a real qcow2 (qemu-img), zstd-compressed, and a
 * SHA256SUMS signed by real openssl keys.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { spawnEmu } from "../_helpers/cli.ts";
import { ecKeyPair, signFile } from "../_helpers/openssl.ts";
import { hasTool, needs, requireTool, TOOLS } from "../_helpers/require.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const IMAGE = "stack-amd64.qcow2.zst";

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

interface Seen {
  path: string;
  authorization: string | null;
  accept: string | null;
}

interface Github {
  dir: string;
  disk: Uint8Array;
  seen: Seen[];
  /** Asset names left out of the release. */
  omit: Set<string>;
  /** The CI artifact's zip, and the digest the API reports for it. */
  ci: { zip: Uint8Array<ArrayBuffer>; digest: string };
  pull(args: string[], env?: Record<string, string>, key?: string): ReturnType<typeof spawnEmu>;
  listReleases(env?: Record<string, string>): ReturnType<typeof spawnEmu>;
}

async function withGithub(fn: (g: Github) => Promise<void>) {
  if (!await requireTool("qemu-img", "qemu-utils")) return;
  if (!await requireTool("zstd", "zstd")) return;
  if (!await requireTool("openssl", "openssl", ["version"])) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-github-" });
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "stack-amd64.qcow2", "16M"], dir);
  await run("zstd", ["-q", "stack-amd64.qcow2", "-o", IMAGE], dir);
  const release = await ecKeyPair(dir, "release");
  const other = await ecKeyPair(dir, "other");
  const zst = await Deno.readFile(join(dir, IMAGE));
  await Deno.writeTextFile(join(dir, "SHA256SUMS"), `${sha(zst)}  ${IMAGE}\n`);
  await signFile(release.key, join(dir, "SHA256SUMS"), join(dir, "SHA256SUMS.sig"));
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    [IMAGE]: zst,
    "SHA256SUMS": await Deno.readFile(join(dir, "SHA256SUMS")),
    "SHA256SUMS.sig": await Deno.readFile(join(dir, "SHA256SUMS.sig")),
  };
  // The CI artifact: a zip (written by Python's zipfile, an independent writer) with the
  // image and a SHA256SUMS, as an upload-artifact step would pack them.
  await run("python3", [
    "-c",
    `import zipfile; z = zipfile.ZipFile("artifact.zip", "w", zipfile.ZIP_DEFLATED); z.write("${IMAGE}", "out/${IMAGE}"); z.write("SHA256SUMS", "out/SHA256SUMS"); z.close()`,
  ], dir);
  const zip = await Deno.readFile(join(dir, "artifact.zip"));
  const ci = { zip, digest: `sha256:${sha(zip)}` };
  const names = Object.keys(files);
  const seen: Seen[] = [];
  const omit = new Set<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    seen.push({
      path: url.pathname,
      authorization: req.headers.get("authorization"),
      accept: req.headers.get("accept"),
    });
    const base = url.origin;
    const body = () =>
      JSON.stringify({
        tag_name: "v1.2.0",
        published_at: "2026-11-20T00:00:00Z",
        assets: names.filter((n) => !omit.has(n)).map((name, i) => ({
          name,
          url: `${base}/repos/acme/stack/releases/assets/${i}`,
          browser_download_url: `${base}/acme/stack/releases/download/v1.2.0/${name}`,
        })),
      });
    if (
      url.pathname === "/repos/acme/stack/releases/latest" ||
      url.pathname === "/repos/acme/stack/releases/tags/v1.2.0"
    ) {
      return new Response(body(), { headers: { "content-type": "application/json" } });
    }
    if (url.pathname === "/repos/acme/stack/releases") {
      // The list: the signed release, a draft, and an unsigned pre-release.
      return new Response(
        `[${body()},{"tag_name":"v2.0.0","draft":true,"published_at":null,"assets":[]},` +
          `{"tag_name":"v1.3.0-rc.1","published_at":"2026-11-21T00:00:00Z","assets":[]}]`,
        { headers: { "content-type": "application/json" } },
      );
    }
    if (url.pathname === "/repos/acme/stack/pulls/7") {
      return Response.json({ head: { sha: "c0ffee".repeat(6) + "abcd" } });
    }
    if (url.pathname === "/repos/acme/stack/actions/runs") {
      assert.equal(url.searchParams.get("head_sha"), "c0ffee".repeat(6) + "abcd");
      assert.equal(url.searchParams.get("status"), "success");
      return Response.json({ workflow_runs: [{ id: 41 }, { id: 40 }] });
    }
    const runArtifacts = /^\/repos\/acme\/stack\/actions\/runs\/(\d+)\/artifacts$/.exec(
      url.pathname,
    );
    if (runArtifacts) {
      const artifacts = runArtifacts[1] === "41"
        ? [
          {
            id: 1,
            name: "test-logs",
            expired: false,
            archive_download_url: `${base}/x`,
            digest: null,
          },
          {
            id: 2,
            name: "stack-image-amd64",
            expired: false,
            archive_download_url: `${base}/repos/acme/stack/actions/artifacts/2/zip`,
            digest: ci.digest,
          },
        ]
        : [];
      return Response.json({ total_count: artifacts.length, artifacts });
    }
    if (url.pathname === "/repos/acme/stack/actions/artifacts/2/zip") {
      if (!req.headers.get("authorization")) return new Response("{}", { status: 401 });
      // GitHub answers with a redirect to short-lived storage on another host, which
      // must not receive the token (here: localhost instead of 127.0.0.1).
      return new Response(null, {
        status: 302,
        headers: { location: `${base.replace("127.0.0.1", "localhost")}/blob/2` },
      });
    }
    if (url.pathname === "/blob/2") return new Response(ci.zip);
    const api = /^\/repos\/acme\/stack\/releases\/assets\/(\d+)$/.exec(url.pathname);
    if (api) {
      // The API serves asset bytes only to `Accept: application/octet-stream`.
      if (req.headers.get("accept") !== "application/octet-stream") {
        return new Response("{}", { headers: { "content-type": "application/json" } });
      }
      return new Response(files[names[Number(api[1])]]);
    }
    const dl = /^\/acme\/stack\/releases\/download\/v1\.2\.0\/(.+)$/.exec(url.pathname);
    if (dl && files[dl[1]]) return new Response(files[dl[1]]);
    return new Response(JSON.stringify({ message: "Not Found" }), { status: 404 });
  });
  const api = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  try {
    await fn({
      dir,
      disk: await Deno.readFile(join(dir, "stack-amd64.qcow2")),
      seen,
      omit,
      ci,
      listReleases: (env = {}) =>
        spawnEmu(["list-releases", "--source", "github:acme/stack", "--json"], {
          env: { EMU_HOME: join(dir, "home"), EMU_GITHUB_API: api, GITHUB_TOKEN: "t", ...env },
        }),
      pull: async (args, env = {}, key = release.pub) => {
        const profile = join(dir, "emu.json");
        await Deno.writeTextFile(
          profile,
          JSON.stringify({
            name: "stack",
            image: { source: "github:acme/stack", public_key: await Deno.readTextFile(key) },
          }),
        );
        return await spawnEmu(["--config", profile, "pull", "--skip-snapshot", "--json", ...args], {
          env: {
            EMU_HOME: join(dir, "home"),
            EMU_GITHUB_API: api,
            GITHUB_TOKEN: "",
            GH_TOKEN: "",
            ...env,
          },
        });
      },
    });
    void other;
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

async function images(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(join(dir, "home", "images"))).catch(() => []))
    .map((e) => e.name).filter((n) => !n.startsWith(".")).sort();
}

Deno.test(
  "github source: the latest release, verified like a manifest release, no token",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      if (await hasTool("gh", ["auth", "token"])) {
        console.warn(
          "SKIPPED (gh is logged in here): this case needs a machine without a GitHub token",
        );
        return;
      }
      const r = await g.pull([]);
      assert.equal(r.code, 0, r.stderr);
      const { image, cached } = JSON.parse(r.stdout);
      assert.equal(cached, false);
      assert.equal(image.version, "1.2.0");
      assert.equal(image.source, "github:acme/stack");
      assert.deepEqual(await Deno.readFile(image.disk), g.disk);
      const ids = await images(g.dir);
      assert.equal(ids.length, 1);
      assert.match(ids[0], /^1\.2\.0-image-amd64-[0-9a-f]{12}$/);
      assert.ok(g.seen.every((s) => s.authorization === null), "no token, no Authorization");
      assert.ok(g.seen.some((s) => s.path === `/acme/stack/releases/download/v1.2.0/${IMAGE}`));

      const again = await g.pull(["--version", "v1.2.0"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).cached, true);
    }),
);

Deno.test(
  "github source: with a token, API and asset requests carry it; assets come from the API",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      const r = await g.pull([], { GITHUB_TOKEN: "t0ken" });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await Deno.readFile(JSON.parse(r.stdout).image.disk), g.disk);
      assert.ok(g.seen.length >= 4);
      assert.ok(g.seen.every((s) => s.authorization === "Bearer t0ken"), JSON.stringify(g.seen));
      const assets = g.seen.filter((s) => s.path.includes("/releases/assets/"));
      assert.equal(assets.length, 3, "SHA256SUMS, its signature and the image");
      assert.ok(assets.every((s) => s.accept === "application/octet-stream"));
    }),
);

Deno.test(
  "github source: unknown version, unsigned release, wrong key → refused, nothing installed",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      const missing = await g.pull(["--version", "9.9.9"], { GITHUB_TOKEN: "t" });
      assert.equal(missing.code, 1);
      assert.equal(
        missing.stderr.split("\n")[0],
        "error[release_not_found]: Cannot find release 9.9.9 of acme/stack on GitHub",
      );
      const wrongKey = await g.pull([], { GITHUB_TOKEN: "t" }, join(g.dir, "other.pub.pem"));
      assert.equal(wrongKey.code, 1);
      assert.match(wrongKey.stderr, /^error\[signature_invalid\]: /m);
      g.omit.add("SHA256SUMS.sig");
      const unsigned = await g.pull([], { GITHUB_TOKEN: "t" });
      assert.equal(unsigned.code, 1);
      assert.match(
        unsigned.stderr,
        /error\[checksums_invalid\]: Cannot use GitHub release v1\.2\.0: it has no SHA256SUMS\.sig asset\nhint: emu installs only signed releases/,
      );
      assert.deepEqual(await images(g.dir), []);
    }),
);

Deno.test(
  "github source: list-releases shows the signed releases, marks latest and installed",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      const before = await g.listReleases();
      assert.equal(before.code, 0, before.stderr);
      const listed = JSON.parse(before.stdout);
      assert.equal(listed.latest_stable, "1.2.0");
      assert.deepEqual(
        listed.releases.map((r: { version: string; latest: boolean; installed: boolean }) => [
          r.version,
          r.latest,
          r.installed,
        ]),
        [["1.2.0", true, false]],
        "the draft and the unsigned pre-release are not offered",
      );
      assert.equal((await g.pull([], { GITHUB_TOKEN: "t" })).code, 0);
      const after = JSON.parse((await g.listReleases()).stdout);
      assert.equal(after.releases[0].installed, true);
    }),
);

Deno.test(
  "github source: --pr and --run pull the CI artifact, verified by GitHub's digest",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      const pr = await g.pull(["--pr", "7"], { GITHUB_TOKEN: "t" });
      assert.equal(pr.code, 0, pr.stderr);
      assert.match(
        pr.stderr,
        /pulling CI artifact stack-image-amd64 of run 41 \(pull request 7\)\n/,
      );
      const { image } = JSON.parse(pr.stdout);
      assert.equal(image.version, "pr-7");
      assert.deepEqual(await Deno.readFile(image.disk), g.disk, "unzipped and zstd-decompressed");
      const ciIds = await images(g.dir);
      assert.equal(ciIds.length, 1);
      assert.match(ciIds[0], /^github-acme-stack-run41-stack-image-amd64-[0-9a-f]{8}$/);
      const blob = g.seen.filter((s) => s.path === "/blob/2");
      assert.equal(blob.length, 1);
      assert.equal(blob[0].authorization, null, "the token stays with GitHub across the redirect");
      // The same run by id: the same cache entry.
      const run = await g.pull(["--run", "41"], { GITHUB_TOKEN: "t" });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(JSON.parse(run.stdout).cached, true);
      // A release pull ("latest") never picks a CI build.
      const list = JSON.parse((await g.listReleases()).stdout);
      assert.equal(list.releases[0].installed, false);
    }),
);

Deno.test(
  "github source: CI artifacts need a token, a matching digest and a github source",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      const noToken = await g.pull(["--pr", "7"]);
      if (!(await hasTool("gh", ["auth", "token"]))) {
        assert.equal(noToken.code, 1);
        assert.match(
          noToken.stderr,
          /GitHub serves them only with a token\nhint: Set GITHUB_TOKEN/,
        );
      }
      const noImage = await g.pull(["--run", "40"], { GITHUB_TOKEN: "t" });
      assert.equal(noImage.code, 1);
      assert.match(
        noImage.stderr,
        /^error\[release_not_found\]: Cannot find an image artifact in run 40\n/,
      );
      g.ci.digest = `sha256:${"0".repeat(64)}`;
      const bad = await g.pull(["--pr", "7"], { GITHUB_TOKEN: "t" });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /error\[checksum_mismatch\]: .*GitHub's artifact digest says 0{64}/);
      const both = await g.pull(["--pr", "7", "--run", "41"], { GITHUB_TOKEN: "t" });
      assert.equal(both.code, 2);
      assert.match(both.stderr, /^error\[usage\]: Cannot use --pr and --run together/);
      assert.deepEqual(await images(g.dir), []);
    }),
);

Deno.test(
  "github source: a CI artifact whose SHA256SUMS does not list its image is refused",
  needs(TOOLS.qemuImg, TOOLS.zstd, TOOLS.openssl),
  () =>
    withGithub(async (g) => {
      await Deno.writeTextFile(join(g.dir, "SUMS-OTHER"), `${"a".repeat(64)}  other.qcow2.zst\n`);
      await run("python3", [
        "-c",
        `import zipfile; z = zipfile.ZipFile("other.zip", "w", zipfile.ZIP_DEFLATED); z.write("${IMAGE}", "out/${IMAGE}"); z.write("SUMS-OTHER", "out/SHA256SUMS"); z.close()`,
      ], g.dir);
      g.ci.zip = await Deno.readFile(join(g.dir, "other.zip"));
      g.ci.digest = `sha256:${sha(g.ci.zip)}`;
      const r = await g.pull(["--run", "41"], { GITHUB_TOKEN: "t" });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^error\[checksums_invalid\]: Cannot install stack-amd64\.qcow2\.zst from the CI artifact: the artifact's SHA256SUMS does not list it\n/m,
      );
      assert.deepEqual(await images(g.dir), []);
    }),
);
