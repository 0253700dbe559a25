import assert from "node:assert/strict";
import { imageArtifactOfFile } from "../../../src/artifact/descriptor.ts";
import { parseGithubSource, releaseFromApi } from "../../../src/artifact/github.ts";
import { isGithubSource } from "../../../src/artifact/source_kind.ts";
import { EmuError } from "../../../src/errors.ts";

Deno.test("github: sources are github:OWNER/REPO and nothing looser", () => {
  assert.equal(isGithubSource("github:acme/stack"), true);
  assert.equal(isGithubSource("https://github.com/acme/stack"), false);
  assert.deepEqual(parseGithubSource("github:acme/stack.io"), { owner: "acme", repo: "stack.io" });
  assert.deepEqual(parseGithubSource("github:acme/emu#demo-v"), {
    owner: "acme",
    repo: "emu",
    tagPrefix: "demo-v",
  });
  for (
    const bad of [
      "github:acme",
      "github:acme/stack/x",
      "github:/stack",
      "github:a b/c",
      "github:../x",
      "github:acme/..",
      "github:acme/emu#",
      "github:acme/emu#a/b",
      "github:acme/emu#x#y",
    ]
  ) {
    assert.throws(
      () => parseGithubSource(bad),
      (e) =>
        e instanceof EmuError && e.code === "config_invalid" &&
        e.message.endsWith("expected github:OWNER/REPO (or github:OWNER/REPO#TAGPREFIX)"),
      bad,
    );
  }
});

Deno.test("github: a release's assets become a manifest release; API URLs with a token", () => {
  const api = {
    tag_name: "v1.2.0",
    published_at: "2026-11-20T00:00:00Z",
    assets: [
      "stack-amd64.qcow2.zst",
      "stack-arm64.qcow2",
      "SHA256SUMS",
      "SHA256SUMS.sig",
      "notes.txt",
    ]
      .map((name, i) => ({
        name,
        url: `https://api/a/${i}`,
        browser_download_url: `https://dl/${name}`,
      })),
  };
  const pub = releaseFromApi(api, false);
  assert.deepEqual(pub.release, {
    version: "1.2.0",
    released_at: "2026-11-20T00:00:00Z",
    sha256sums_url: "https://dl/SHA256SUMS",
    sha256sums_sig_url: "https://dl/SHA256SUMS.sig",
    artifacts: {
      "image-amd64": "https://dl/stack-amd64.qcow2.zst",
      "image-arm64": "https://dl/stack-arm64.qcow2",
    },
  });
  const priv = releaseFromApi(api, true);
  assert.equal(priv.release.artifacts["image-amd64"], "https://api/a/0");
  assert.equal(priv.fileNames.get("https://api/a/0"), "stack-amd64.qcow2.zst");
  assert.equal(imageArtifactOfFile("x-amd64.img"), null);
  assert.equal(imageArtifactOfFile("x-amd64.image.json"), "image-amd64-descriptor");
  assert.equal(imageArtifactOfFile("x-arm64.initrd"), "image-arm64-initrd");
  assert.throws(
    () =>
      releaseFromApi({ ...api, assets: api.assets.filter((a) => a.name !== "SHA256SUMS") }, false),
    /it has no SHA256SUMS asset/,
  );
});
