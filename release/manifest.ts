/**
 * `deno task release:manifest --version V --base-url URL --dir DIR [--manifest FILE]
 * [--out FILE]`: adds release V (the files in DIR, published under URL) to the manifest
 * FILE (or a new one) and writes it to --out (default: FILE). The result is checked with
 * the same parser `emu` uses.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Manifest, parseManifest } from "../src/artifact/manifest.ts";
import { addRelease, releaseEntry } from "./lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    version: { type: "string" },
    "base-url": { type: "string" },
    dir: { type: "string" },
    manifest: { type: "string" },
    out: { type: "string" },
    "released-at": { type: "string" },
  },
});
if (!values.version || !values["base-url"] || !values.dir || !(values.out ?? values.manifest)) {
  console.error(
    "usage: deno task release:manifest --version V --base-url URL --dir DIR [--manifest FILE] [--out FILE]",
  );
  Deno.exit(2);
}
const existing: Manifest | null = values.manifest
  ? await Deno.readTextFile(values.manifest).then(
    (t) => parseManifest(t, values.manifest!),
    () => null,
  )
  : null;
const files = [...Deno.readDirSync(values.dir)].filter((e) => e.isFile).map((e) => e.name);
const release = releaseEntry(
  values.version,
  values["released-at"] ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  values["base-url"],
  files,
);
const text = `${JSON.stringify(addRelease(existing, release), null, 2)}\n`;
parseManifest(text, "the new manifest");
await Deno.writeTextFile(values.out ?? values.manifest!, text);
console.log(
  `manifest: release ${release.version} with ${Object.keys(release.artifacts).join(", ")}`,
);
