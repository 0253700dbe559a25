import assert from "node:assert/strict";
import { imageArtifactNames } from "../../../src/artifact/descriptor.ts";
import { MAX_MANIFEST_BYTES, parseManifest, pickRelease } from "../../../src/artifact/manifest.ts";
import { parseSha256Sums } from "../../../src/artifact/sha256sums.ts";

function manifest(
  overrides: Record<string, unknown> = {},
  release: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    schema_version: 1,
    latest_stable: "1.4.0",
    releases: [
      {
        version: "1.4.0",
        released_at: "2026-11-01T00:00:00Z",
        sha256sums_url: "https://example.com/1.4.0/SHA256SUMS",
        sha256sums_sig_url: "https://example.com/1.4.0/SHA256SUMS.sig",
        artifacts: { "image-amd64": "https://example.com/1.4.0/stack-amd64.qcow2.zst" },
        ...release,
      },
      {
        version: "1.3.0",
        released_at: "2026-10-01T00:00:00Z",
        sha256sums_url: "https://example.com/1.3.0/SHA256SUMS",
        sha256sums_sig_url: "https://example.com/1.3.0/SHA256SUMS.sig",
        artifacts: { "image-amd64": "https://example.com/1.3.0/stack-amd64.qcow2.zst" },
      },
    ],
    ...overrides,
  });
}

Deno.test("manifest: a valid schema 1 manifest, release picking by version and latest", () => {
  const m = parseManifest(manifest(), "test");
  assert.equal(pickRelease(m, "latest").version, "1.4.0");
  assert.equal(pickRelease(m, "1.3.0").version, "1.3.0");
  assert.equal(pickRelease(m, "v1.3.0").version, "1.3.0");
  assert.equal(imageArtifactNames("x86_64").disk, "image-amd64");
  assert.equal(imageArtifactNames("aarch64").disk, "image-arm64");
  assert.throws(() => pickRelease(m, "9.9.9"), {
    code: "release_not_found",
    message: "Cannot find release 9.9.9: the manifest has 1.4.0, 1.3.0",
  });
});

Deno.test("manifest: a newer schema_version says to upgrade emu", () => {
  assert.throws(() => parseManifest(manifest({ schema_version: 2 }), "https://x/manifest.json"), {
    code: "emu_too_old",
    message:
      "Cannot read the manifest https://x/manifest.json: it uses schema_version 2, this emu understands 1",
    hint: "Upgrade emu (emu upgrade, or brew upgrade emu).",
  });
});

Deno.test("manifest: over 1 MiB is refused before parsing", () => {
  const big = manifest({ padding: "x".repeat(MAX_MANIFEST_BYTES) });
  assert.throws(() => parseManifest(big, "m"), { code: "manifest_too_large" });
});

Deno.test("manifest: traversal in artifact names or file names is refused", () => {
  assert.throws(() => parseManifest(manifest({}, { artifacts: { "../x": "https://e/x" } }), "m"), {
    code: "manifest_invalid",
    message:
      'Cannot use the manifest m: releases[0].artifacts has a name that is not a plain name: "../x"',
  });
  assert.throws(
    () =>
      parseManifest(
        manifest({}, { artifacts: { "image-amd64": "https://e/a/..%2F..%2Fetc" } }),
        "m",
      ),
    {
      code: "manifest_invalid",
    },
  );
  assert.throws(() => parseManifest(manifest({}, { sha256sums_url: "ftp://e/SUMS" }), "m"), {
    code: "manifest_invalid",
  });
  assert.throws(() => parseManifest("not json", "m"), { code: "manifest_invalid" });
  assert.throws(() => parseManifest(manifest({ latest_stable: "2.0.0" }), "m"), {
    message: "Cannot use the manifest m: latest_stable 2.0.0 is not among the releases",
  });
});

const HASH = "0123456789abcdef".repeat(4);

Deno.test("SHA256SUMS: strict lines, plain names", () => {
  const sums = parseSha256Sums(
    `${HASH}  stack-amd64.qcow2.zst\n${HASH.toUpperCase()} *emu-x86_64.tar.gz\n`,
  );
  assert.deepEqual([...sums], [["stack-amd64.qcow2.zst", HASH], ["emu-x86_64.tar.gz", HASH]]);
  const bad: [string, RegExp][] = [
    [`${HASH}  ../etc/passwd\n`, /not a plain file name/],
    [`${HASH}  dir/file\n`, /not a plain file name/],
    [`${HASH.slice(1)}  f\n`, /line 1 is not/],
    [`${HASH}  f\n${HASH}  f\n`, /f is listed twice/],
    [`${HASH}  f`, /does not end with a newline \(truncated\?\)/],
    ["", /lists no files/],
    [`${HASH}  f\n`.repeat(1) + "x".repeat(70 * 1024) + "\n", /larger than 65536 bytes/],
  ];
  for (const [text, message] of bad) {
    assert.throws(
      () => parseSha256Sums(text),
      { code: "checksums_invalid", message },
      text.slice(0, 40),
    );
  }
});

Deno.test("manifest: an https manifest may not send a download over http, nor any remote one to file:", () => {
  const withUrl = (url: string) =>
    JSON.stringify({
      schema_version: 1,
      latest_stable: "1.0.0",
      releases: [{
        version: "1.0.0",
        sha256sums_url: "https://x/SHA256SUMS",
        sha256sums_sig_url: "https://x/SHA256SUMS.sig",
        artifacts: { "image-amd64": url },
      }],
    });
  assert.throws(() => parseManifest(withUrl("http://x/a.qcow2"), "https://x/m.json"), {
    code: "manifest_invalid",
    message: /releases\[0\]\.artifacts\.image-amd64 downgrades https to http$/,
  });
  assert.throws(() => parseManifest(withUrl("file:///a.qcow2"), "http://127.0.0.1/m.json"), {
    message: /is a file: URL, which a remote manifest may not use$/,
  });
  // A local manifest is the user's own: it may name local files and any server.
  assert.equal(
    parseManifest(withUrl("file:///a.qcow2"), "/srv/m.json").releases[0].artifacts["image-amd64"],
    "file:///a.qcow2",
  );
});

Deno.test("manifest: versions are semantic versions; 1.0.0-rc-1 and -rc-2 are two releases", () => {
  const m = (versions: string[]) =>
    JSON.stringify({
      schema_version: 1,
      latest_stable: versions[0],
      releases: versions.map((version) => ({
        version,
        sha256sums_url: "https://x/S",
        sha256sums_sig_url: "https://x/S.sig",
        artifacts: {},
      })),
    });
  assert.equal(parseManifest(m(["1.0.0-rc-1", "1.0.0-rc-2"]), "t").releases.length, 2);
  for (const bad of ["9", "1.4", "latest", "1.0.0 ", "01.0.0"]) {
    assert.throws(() => parseManifest(m([bad]), "t"), {
      code: "manifest_invalid",
      message: /latest_stable must be a semantic version such as 1\.4\.0/,
    }, bad);
  }
});
