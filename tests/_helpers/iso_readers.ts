/**
 * Reads ISO images back with independent readers from Debian: isoinfo (genisoimage) in
 * Joliet and Rock Ridge modes, xorriso, and bsdtar (libarchive).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { requireTool } from "./require.ts";

const LOCALE = { LC_ALL: "C.UTF-8" };

async function run(cmd: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, env: LOCALE, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return out.stdout;
}

/** Fails (or skips loudly) unless every reader is installed. */
export async function requireIsoReaders(): Promise<boolean> {
  return (await requireTool("isoinfo", "genisoimage", ["-version"])) &&
    (await requireTool("xorriso", "xorriso", ["-version"])) &&
    (await requireTool("bsdtar", "libarchive-tools", ["--version"]));
}

/** One file of `isoinfo -x`, by its path in the Joliet (`-J`) or Rock Ridge (`-R`) tree. */
export function isoinfoExtract(iso: string, mode: "-J" | "-R", path: string): Promise<Uint8Array> {
  return run("isoinfo", ["-i", iso, mode, "-x", path]);
}

/** Every path `isoinfo -f` lists in the given mode. */
export async function isoinfoList(iso: string, mode: "-J" | "-R"): Promise<string[]> {
  const text = new TextDecoder().decode(await run("isoinfo", ["-i", iso, mode, "-f"]));
  return text.split("\n").filter((l) => l !== "").sort();
}

/** Extracts the whole image with xorriso (Rock Ridge names and modes). */
export async function xorrisoExtract(iso: string, dest: string): Promise<void> {
  await run("xorriso", [
    "-abort_on",
    "WARNING",
    "-osirrox",
    "on",
    "-indev",
    iso,
    "-extract",
    "/",
    dest,
  ]);
}

/** Extracts the whole image with bsdtar: Rock Ridge names, or with `joliet` the Joliet tree. */
export async function bsdtarExtract(iso: string, dest: string, joliet = false): Promise<void> {
  await Deno.mkdir(dest, { recursive: true });
  await run("bsdtar", [
    ...(joliet ? ["--options", "iso9660:!rockridge"] : []),
    "-xf",
    iso,
    "-C",
    dest,
  ]);
}

/** Expected content of an image: file path → bytes (and optionally its mode). */
export interface ExpectedFile {
  data: Uint8Array;
  mode?: number;
}

/**
 * Asserts that `dir` holds exactly the expected files (and nothing else) with the same
 * bytes, and, when `dirs` is given, exactly those directories.
 */
export async function assertTreeEquals(
  dir: string,
  expected: Map<string, ExpectedFile>,
  reader: string,
  dirs?: readonly string[],
): Promise<void> {
  const found = new Map<string, Deno.FileInfo>();
  const foundDirs: string[] = [];
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub === "" ? e.name : `${sub}/${e.name}`;
      if (e.isDirectory) {
        foundDirs.push(rel);
        await walk(rel);
      } else {
        found.set(rel, await Deno.stat(join(dir, rel)));
      }
    }
  };
  await walk("");
  assert.deepEqual([...found.keys()].sort(), [...expected.keys()].sort(), `${reader}: file list`);
  if (dirs !== undefined) {
    assert.deepEqual(foundDirs.sort(), [...dirs].sort(), `${reader}: directory list`);
  }
  for (const [path, want] of expected) {
    const got = await Deno.readFile(join(dir, path));
    assert.ok(
      equalBytes(got, want.data),
      `${reader}: ${path} differs (${got.length} vs ${want.data.length} bytes)`,
    );
    if (want.mode !== undefined) {
      assert.equal(found.get(path)!.mode! & 0o777, want.mode, `${reader}: mode of ${path}`);
    }
  }
}

/** Byte equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
