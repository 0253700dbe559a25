/**
 * `deno task release:render --repo OWNER/NAME --manifest-url URL --public-key FILE`: fills
 * the release markers in place, before `deno compile` and before install.sh is
 * published — the manifest URL and release public key that `emu upgrade` trusts
 * (src/artifact/release_config.ts) and the repository and key install.sh uses.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { renderMarkers } from "./lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    repo: { type: "string" },
    "manifest-url": { type: "string" },
    "public-key": { type: "string" },
    root: { type: "string", default: "." },
  },
});
if (!values.repo || !values["manifest-url"] || !values["public-key"]) {
  console.error(
    "usage: deno task release:render --repo OWNER/NAME --manifest-url URL --public-key FILE",
  );
  Deno.exit(2);
}
const publicKey = (await Deno.readTextFile(values["public-key"])).trim();
for (const file of ["src/artifact/release_config.ts", "install.sh"]) {
  const path = `${values.root}/${file}`;
  const rendered = renderMarkers(
    await Deno.readTextFile(path),
    file.endsWith(".sh") ? "sh" : "ts",
    {
      EMU_REPO: values.repo,
      EMU_RELEASE_MANIFEST_URL: values["manifest-url"],
      EMU_RELEASE_PUBLIC_KEY: publicKey,
    },
  );
  await Deno.writeTextFile(path, rendered);
  console.log(`rendered ${file}`);
}
