/**
 * `deno task release:sums DIR`: writes `DIR/SHA256SUMS` for every release file in DIR
 * (emu archives, stack images, install.sh).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { artifactOf, sha256SumsText, type Sum } from "./lib.ts";

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: deno task release:sums DIR");
  Deno.exit(2);
}
const sums: Sum[] = [];
for (const entry of Deno.readDirSync(dir)) {
  if (!entry.isFile || (artifactOf(entry.name) === null && entry.name !== "install.sh")) continue;
  const hash = createHash("sha256");
  for await (const chunk of (await Deno.open(join(dir, entry.name))).readable) hash.update(chunk);
  sums.push({ name: entry.name, sha256: hash.digest("hex") });
}
await Deno.writeTextFile(join(dir, "SHA256SUMS"), sha256SumsText(sums));
console.log(`SHA256SUMS: ${sums.length} files`);
