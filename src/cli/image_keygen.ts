/**
 * `emu image keygen --out KEY.pem`: a new release signing key (ECDSA P-256). The private
 * key is written 0600 and never printed; the public key is printed as the JSON string a
 * profile's `image.public_key` takes.
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { resolve } from "node:path";
import { EmuError } from "../errors.ts";
import { commandContext, type GlobalOptions } from "./context.ts";
import type { CliIo } from "./io.ts";

/** Registers `emu image keygen` under `image`. */
export function registerImageKeygen(image: Command, io: CliIo): void {
  image
    .command("keygen")
    .description("make a release signing key; print the public key for image.public_key")
    .requiredOption("--out <key.pem>", "where to write the private key (mode 0600)")
    .option("--force", "replace an existing file")
    .action(async (options, cmd) => {
      const { out, settings } = commandContext(io, cmd.optsWithGlobals() as GlobalOptions);
      const path = resolve(settings.cwd, options.out);
      const { generateSigningKey } = await import("../artifact/signing.ts");
      const { keyFingerprint } = await import("../artifact/signature.ts");
      const { privateKeyPem, key } = generateSigningKey();
      const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
      try {
        await Deno.writeTextFile(temp, privateKeyPem, { mode: 0o600, createNew: true });
        await Deno.chmod(temp, 0o600);
        if (!options.force && await Deno.lstat(path).then(() => true, () => false)) {
          throw new EmuError("usage", `Cannot write ${path}: it exists`, {
            hint: "Pick another path, or replace it with --force (the old key is lost).",
          });
        }
        await Deno.rename(temp, path);
      } catch (err) {
        await Deno.remove(temp).catch(() => {});
        if (err instanceof EmuError) throw err;
        throw new EmuError("io", `Cannot write ${path}: ${(err as Error).message}`, {
          hint: "Write the key into an existing directory you can write to.",
        });
      }
      const fingerprint = keyFingerprint(key.publicKeyPem);
      out.json({ private_key: path, public_key: key.publicKeyPem, fingerprint });
      out.info(
        `wrote the private key to ${path} (mode 0600; keep it secret, e.g. as a CI secret for EMU_SIGNING_KEY)\n` +
          `fingerprint ${fingerprint}; the public key, for emu.json's image.public_key:`,
      );
      out.result(JSON.stringify(key.publicKeyPem));
    });
}
