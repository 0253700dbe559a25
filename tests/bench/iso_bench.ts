/**
 * ISO writing: emu (library and CLI) vs genisoimage -J -R and xorriso -as mkisofs on the
 * same tree: 1,000 small files plus one 256 MiB file. Run with `deno task bench`.
 */
import { join } from "node:path";
import { entriesFromDirectory, writeIsoFile } from "../../src/iso/mod.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

const root = await Deno.makeTempDir({ prefix: "emu-iso-bench-" });
const tree = join(root, "tree");
await Deno.mkdir(join(tree, "small"), { recursive: true });
for (let i = 0; i < 1000; i++) {
  await Deno.writeTextFile(
    join(tree, "small", `file-${i}.txt`),
    `content of file ${i}\n`.repeat(1 + (i % 50)),
  );
}
{
  // Random bytes, so no layer can shortcut zero pages.
  using big = await Deno.open(join(tree, "big.bin"), { write: true, create: true });
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 256; i++) {
    crypto.getRandomValues(chunk.subarray(0, 65536));
    for (let j = 65536; j < chunk.length; j += 65536) chunk.copyWithin(j, 0, 65536);
    chunk[0] = i;
    await big.write(chunk);
  }
}
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
}

const options = { group: "iso: 1,000 small files + 256 MiB", n: 5, warmup: 1 };

Deno.bench("genisoimage -J -R", { ...options, baseline: true }, async () => {
  await run("genisoimage", [
    "-quiet",
    "-J",
    "-R",
    "-V",
    "cidata",
    "-o",
    join(root, "genisoimage.iso"),
    tree,
  ]);
});

Deno.bench("xorriso -as mkisofs -J -R", options, async () => {
  await run("xorriso", [
    "-as",
    "mkisofs",
    "-quiet",
    "-J",
    "-R",
    "-V",
    "cidata",
    "-o",
    join(root, "xorriso.iso"),
    tree,
  ]);
});

// genisoimage and xorriso do not fsync; this row does the same work they do.
Deno.bench("emu writeIsoFile (library, no fsync)", options, async () => {
  const entries = await entriesFromDirectory(tree);
  await writeIsoFile(entries, join(root, "emu-lib.iso"), { label: "cidata", sync: false });
});

Deno.bench("emu writeIsoFile (library, fsync before rename: default)", options, async () => {
  const entries = await entriesFromDirectory(tree);
  await writeIsoFile(entries, join(root, "emu-lib-sync.iso"), { label: "cidata" });
});

Deno.bench("emu iso (CLI process, incl. Deno start-up)", options, async () => {
  await run(Deno.execPath(), [
    "run",
    "-A",
    "--config",
    CONFIG,
    MAIN,
    "iso",
    tree,
    "-o",
    join(root, "emu-cli.iso"),
    "-q",
  ]);
});
