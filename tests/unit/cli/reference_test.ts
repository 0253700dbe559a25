import assert from "node:assert/strict";
import { join } from "node:path";
import { referencePages } from "../../../src/cli/reference.ts";

const DOCS = new URL("../../../docs/", import.meta.url).pathname;

Deno.test("docs: the generated reference pages match the code (run `deno task docs` when this fails)", async () => {
  const pages = await referencePages();
  const stale: string[] = [];
  for (const [path, text] of pages) {
    const onDisk = await Deno.readTextFile(join(DOCS, path)).catch(() => null);
    if (onDisk !== text) stale.push(path);
  }
  const extra = (await Array.fromAsync(Deno.readDir(join(DOCS, "cli"))))
    .map((e) => `cli/${e.name}`).filter((p) => !pages.has(p));
  assert.deepEqual(
    { stale, extra },
    { stale: [], extra: [] },
    "docs/ is out of date with the command tree or the error codes: run `deno task docs`",
  );
});

Deno.test("docs: one page per command, each the command's exact --help", async () => {
  const pages = await referencePages();
  const publish = pages.get("cli/image-publish.md")!;
  assert.match(publish, /^# emu image publish\n/);
  assert.match(publish, /\nUsage: emu image publish \[options\] <image-dir>\n/);
  assert.match(pages.get("cli/README.md")!, /\| \[emu image keygen\]\(image-keygen\.md\) \|/);
  assert.match(
    pages.get("errors.md")!,
    /\| `rollback_refused` \| A source offered an older latest/,
  );
});
