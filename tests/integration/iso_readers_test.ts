/**
 * ISO images written by emu, read back byte-exactly by three independent readers:
 * isoinfo (Joliet and Rock Ridge), xorriso and bsdtar.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type IsoEntry, writeIsoFile } from "../../src/iso/mod.ts";
import {
  assertTreeEquals,
  bsdtarExtract,
  equalBytes,
  type ExpectedFile,
  isoinfoExtract,
  isoinfoList,
  requireIsoReaders,
  xorrisoExtract,
} from "../_helpers/iso_readers.ts";
import { ISO_READERS, needs } from "../_helpers/require.ts";

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/**
 * Writes `entries` with emu, then reads every file back: the Rock Ridge tree (names and
 * modes) with xorriso, bsdtar and `isoinfo -R -x`; the Joliet tree with bsdtar in Joliet
 * mode and `isoinfo -J -x`. `joliet` maps paths whose Joliet name differs (cut to 64
 * units). isoinfo has no UTF-8 table for Joliet names, so it checks ASCII paths only.
 */
async function assertReadersAgree(entries: IsoEntry[], joliet = new Map<string, string>()) {
  if (!await requireIsoReaders()) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-iso-" });
  try {
    const iso = join(dir, "test.iso");
    await writeIsoFile(entries, iso, { label: "cidata", date: new Date("2026-11-01T12:34:56Z") });
    const expected = new Map<string, ExpectedFile>();
    for (const e of entries) {
      if (e.directory) continue;
      expected.set(e.path, {
        data: e.data ?? await Deno.readFile(e.sourcePath!),
        mode: e.mode ?? 0o644,
      });
    }
    const dirs = new Set<string>();
    for (const e of entries) {
      const parts = e.path.split("/");
      for (let i = 1; i < parts.length + (e.directory ? 1 : 0); i++) {
        dirs.add(parts.slice(0, i).join("/"));
      }
    }
    const expectedJoliet = new Map(
      [...expected].map(([p, f]) => [joliet.get(p) ?? p, { data: f.data }]),
    );

    await xorrisoExtract(iso, join(dir, "xorriso"));
    await assertTreeEquals(join(dir, "xorriso"), expected, "xorriso", [...dirs]);
    await bsdtarExtract(iso, join(dir, "bsdtar"));
    await assertTreeEquals(join(dir, "bsdtar"), expected, "bsdtar", [...dirs]);
    await bsdtarExtract(iso, join(dir, "bsdtar-joliet"), true);
    await assertTreeEquals(join(dir, "bsdtar-joliet"), expectedJoliet, "bsdtar (Joliet)");

    const rrPaths = (await isoinfoList(iso, "-R")).filter((p) => expected.has(p.slice(1)));
    assert.deepEqual(
      rrPaths,
      [...expected.keys()].map((p) => `/${p}`).sort(),
      "isoinfo -R file list",
    );
    for (const [path, want] of expected) {
      assert.ok(
        equalBytes(await isoinfoExtract(iso, "-R", `/${path}`), want.data),
        `isoinfo -R: ${path}`,
      );
    }
    for (const [path, want] of expectedJoliet) {
      if (!/^[\x20-\x7e]+$/.test(path)) continue;
      assert.ok(
        equalBytes(await isoinfoExtract(iso, "-J", `/${path}`), want.data),
        `isoinfo -J: ${path}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "readers: empty file",
  needs(...ISO_READERS),
  () => assertReadersAgree([{ path: "empty", data: new Uint8Array(0) }]),
);

Deno.test(
  "readers: 1 byte file",
  needs(...ISO_READERS),
  () => assertReadersAgree([{ path: "one", data: new Uint8Array([0x42]) }]),
);

Deno.test(
  "readers: exactly one sector (2048 bytes)",
  needs(...ISO_READERS),
  () => assertReadersAgree([{ path: "sector", data: bytes(2048) }]),
);

Deno.test(
  "readers: multi-sector file",
  needs(...ISO_READERS),
  () => assertReadersAgree([{ path: "big.bin", data: bytes(5 * 2048 + 17) }]),
);

Deno.test(
  "readers: empty file followed by another file",
  needs(...ISO_READERS),
  () =>
    assertReadersAgree([
      { path: "a-empty", data: new Uint8Array(0) },
      { path: "b-next", data: bytes(3000, 7) },
      { path: "c-empty", data: new Uint8Array(0) },
    ]),
);

Deno.test(
  "readers: three levels of directories, empty directory, modes",
  needs(...ISO_READERS),
  () =>
    assertReadersAgree([
      { path: "user-data", data: new TextEncoder().encode("#cloud-config\n"), mode: 0o600 },
      { path: "meta-data", data: new TextEncoder().encode("instance-id: emu\n") },
      { path: "etc/emu/conf/runtime.env", data: new TextEncoder().encode("A=1\n"), mode: 0o640 },
      { path: "etc/emu/bin/rotate", data: new TextEncoder().encode("#!/bin/sh\n"), mode: 0o755 },
      { path: "var/empty", directory: true },
    ]),
);

Deno.test(
  "readers: a directory with 500 entries spans several sectors",
  needs(...ISO_READERS),
  () => {
    const entries: IsoEntry[] = [];
    for (let i = 0; i < 500; i++) {
      entries.push({ path: `many/file-${String(i).padStart(3, "0")}.txt`, data: bytes(i % 7, i) });
    }
    return assertReadersAgree(entries);
  },
);

Deno.test(
  "readers: non-ASCII names keep their exact spelling",
  needs(...ISO_READERS),
  () =>
    assertReadersAgree([
      { path: "café.txt", data: bytes(10, 2) },
      { path: "日本語/ファイル.txt", data: bytes(20, 3) },
      { path: "emoji-😀.bin", data: bytes(30, 4) },
      { path: "Mixed Case Name.TXT", data: bytes(40, 5) },
    ]),
);

Deno.test(
  "readers: names that collide after mangling stay distinct",
  needs(...ISO_READERS),
  () =>
    assertReadersAgree([
      { path: "user-data", data: bytes(1, 1) },
      { path: "user_data", data: bytes(2, 2) },
      { path: "USER-DATA", data: bytes(3, 3) },
      { path: "a-very-long-file-name-that-is-truncated-1.conf", data: bytes(4, 4) },
      { path: "a-very-long-file-name-that-is-truncated-2.conf", data: bytes(5, 5) },
      { path: "dir.one/x", data: bytes(6, 6) },
      { path: "dir_one/x", data: bytes(7, 7) },
    ]),
);

Deno.test(
  "readers: names longer than Joliet's 64 units keep their full Rock Ridge name",
  needs(...ISO_READERS),
  () => {
    const x = "x".repeat(70);
    const y = "y".repeat(200);
    return assertReadersAgree(
      [
        { path: `${x}-1`, data: bytes(8, 8) },
        { path: `${x}-2`, data: bytes(9, 9) },
        { path: y, data: bytes(10, 10) },
        { path: `deep/${"é".repeat(63)}😀`, data: bytes(11, 11) },
      ],
      new Map([
        [`${x}-1`, "x".repeat(64)],
        [`${x}-2`, `${"x".repeat(62)}~1`],
        [y, "y".repeat(64)],
        // The emoji is a surrogate pair: it is dropped whole, not split.
        [`deep/${"é".repeat(63)}😀`, `deep/${"é".repeat(63)}`],
      ]),
    );
  },
);

Deno.test("readers: files streamed from host paths", needs(...ISO_READERS), async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "a"), bytes(100_000, 11));
    await Deno.writeFile(join(dir, "b"), new Uint8Array(0));
    await assertReadersAgree([
      { path: "from-disk/a", sourcePath: join(dir, "a") },
      { path: "from-disk/b", sourcePath: join(dir, "b"), mode: 0o600 },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
