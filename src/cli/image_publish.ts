/**
 * `emu image publish IMAGE_DIR --out DIR --key KEY.pem …`: a built image → a signed
 * release directory to upload (see `src/image/publish.ts`).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { resolve } from "node:path";
import type { SigningKey } from "../artifact/signing.ts";
import { EmuError } from "../errors.ts";
import { MIN_ZSTD_SAVING, PUBLISH_ZSTD_LEVEL } from "../image/publish_defaults.ts";
import { positiveInt } from "./_instance_options.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu image publish` under `image`. */
export function registerImagePublish(image: Command, io: CliIo): void {
  image
    .command("publish")
    .description(
      "write a signed release of a built image: compressed disk, boot files, SHA256SUMS, manifest",
    )
    .argument("<image-dir>", "the image directory (with image.json) that emu image build wrote")
    .requiredOption("--out <dir>", "the release directory to write (new or empty)")
    .option(
      "--key <key.pem>",
      "ECDSA P-256 private key (default: the PEM text in $EMU_SIGNING_KEY)",
    )
    .option("--base-url <url>", "where the files will be served from: writes manifest.json")
    .option("--manifest <file|url>", "an existing signed manifest to add this release to")
    .option("--github", "name the files for a GitHub release (github:OWNER/REPO sources)")
    .option("--version <version>", "the release version (default: image.json's)")
    .option(
      "--level <n>",
      `always compress the disk with zstd at this level, 1–19 (default: level ${PUBLISH_ZSTD_LEVEL} unless that saves under ${
        MIN_ZSTD_SAVING * 100
      }%, then the qcow2 as it is)`,
      positiveInt("--level"),
    )
    .option("--force", "replace a non-empty --out, and this version in --manifest")
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  emu image keygen --out release-key.pem\n" +
        "  emu image publish out/ --out release/ --key release-key.pem \\\n" +
        "    --base-url https://downloads.example.com/stack/1.4.0\n" +
        "  # upload release/*; profiles use image.source = <URL of manifest.json>\n" +
        "\nThe manifest given with --manifest must verify with the same key.",
    )
    .action(async (imageDir, options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const key = await signingKey(options.key, io, settings.cwd);
      // Loaded when used: the other commands do not pay for it at start-up.
      const { publishImage } = await import("../image/publish.ts");
      const result = await publishImage({
        imageDir: resolve(settings.cwd, imageDir),
        out: resolve(settings.cwd, options.out),
        key,
        baseUrl: options.baseUrl,
        manifest: options.manifest,
        github: options.github,
        force: options.force,
        level: options.level,
        version: options.version,
        onProgress: (t) => out.info(t),
      });
      out.json({ ...result, public_key: key.publicKeyPem });
      const lines = [`release ${result.version} (${result.arch}) in ${result.out}:`];
      for (const f of result.files) {
        lines.push(`  ${f.name.padEnd(32)} ${String(f.bytes).padStart(12)} bytes`);
      }
      lines.push(
        "  SHA256SUMS, SHA256SUMS.sig" +
          (result.manifest ? ", manifest.json, manifest.json.sig" : ""),
      );
      if (options.github) {
        lines.push(
          `next: gh release create v${result.version} ${result.out}/* (profiles: image.source "github:OWNER/REPO")`,
        );
      }
      if (result.manifest) {
        lines.push(
          `next: upload ${result.out}/* to ${options.baseUrl}; profiles point image.source at the manifest.json URL`,
        );
      }
      out.result(lines.join("\n"));
    });
}

/** The key from `--key FILE`, else from `$EMU_SIGNING_KEY` (PEM text, for CI secrets). */
async function signingKey(path: string | undefined, io: CliIo, cwd: string): Promise<SigningKey> {
  const { loadSigningKey } = await import("../artifact/signing.ts");
  if (path !== undefined) {
    const file = resolve(cwd, path);
    const pem = await Deno.readTextFile(file).catch((err) => {
      throw new EmuError("usage", `Cannot read the signing key ${file}: ${(err as Error).message}`);
    });
    return loadSigningKey(pem, file);
  }
  const pem = io.env.EMU_SIGNING_KEY;
  if (!pem) {
    throw new EmuError("usage", "Cannot publish without a signing key", {
      hint:
        "Pass --key KEY.pem, or set EMU_SIGNING_KEY to the PEM text (emu image keygen makes one).",
    });
  }
  return loadSigningKey(pem, "EMU_SIGNING_KEY");
}
