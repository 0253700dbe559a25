/**
 * `deno task docs`: writes the generated reference pages (docs/cli/*.md, docs/errors.md)
 * from the code. tests/unit/cli/reference_test.ts fails when they are stale.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { referencePages } from "../src/cli/reference.ts";

const docs = new URL("../docs/", import.meta.url).pathname;
const pages = await referencePages();
// Pages of commands that no longer exist go too.
const existing = await Array.fromAsync(Deno.readDir(join(docs, "cli"))).catch(() => []);
for (const e of existing) {
  if (!pages.has(`cli/${e.name}`)) await Deno.remove(join(docs, "cli", e.name));
}
for (const [path, text] of pages) {
  await Deno.mkdir(dirname(join(docs, path)), { recursive: true });
  await Deno.writeTextFile(join(docs, path), text);
}
console.log(`wrote ${pages.size} pages under docs/`);
