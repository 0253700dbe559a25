import assert from "node:assert/strict";
import { descriptorDate, recordDate } from "../../../src/iso/_encode.ts";
import { planIso } from "../../../src/iso/layout.ts";
import { volumeLabel } from "../../../src/iso/names.ts";
import { buildTree, type IsoEntry } from "../../../src/iso/tree.ts";

const SECTOR = 2048;
const DATE = new Date("2026-11-01T12:34:56Z");
const text = (s: string) => new TextEncoder().encode(s);

function plan(entries: IsoEntry[], date = DATE) {
  return planIso(buildTree(entries, () => 0), { label: volumeLabel("cidata"), date });
}

const ascii = (b: Uint8Array) => new TextDecoder("latin1").decode(b);

Deno.test("dates: 7-byte record date and 17-byte descriptor date, UTC", () => {
  assert.deepEqual([...recordDate(DATE)], [126, 11, 1, 12, 34, 56, 0]);
  assert.equal(ascii(descriptorDate(DATE).subarray(0, 16)), "2026110112345600");
  assert.equal(descriptorDate(DATE)[16], 0);
  assert.equal(ascii(descriptorDate(null).subarray(0, 16)), "0".repeat(16));
});

Deno.test("volume descriptors: primary, Joliet (%/E), terminator at sectors 16–18", () => {
  const p = plan([{ path: "meta-data", data: text("x") }]);
  const h = p.header;
  const view = new DataView(h.buffer);
  const pvd = 16 * SECTOR;
  assert.equal(h[pvd], 1);
  assert.equal(ascii(h.subarray(pvd + 1, pvd + 6)), "CD001");
  assert.equal(ascii(h.subarray(pvd + 40, pvd + 72)), "CIDATA".padEnd(32));
  assert.equal(view.getUint32(pvd + 80, true), p.totalSectors);
  assert.equal(view.getUint32(pvd + 84, false), p.totalSectors);
  assert.equal(view.getUint16(pvd + 128, true), 2048);
  assert.equal(ascii(h.subarray(pvd + 813, pvd + 829)), "2026110112345600");
  assert.equal(h[pvd + 881], 1);
  const svd = 17 * SECTOR;
  assert.equal(h[svd], 2);
  assert.deepEqual([...h.subarray(svd + 88, svd + 91)], [0x25, 0x2f, 0x45]);
  const label = [...h.subarray(svd + 40, svd + 52)];
  assert.deepEqual(label, [0, 0x63, 0, 0x69, 0, 0x64, 0, 0x61, 0, 0x74, 0, 0x61]); // "cidata" in UCS-2 BE
  assert.deepEqual([...h.subarray(svd + 52, svd + 54)], [0, 0x20]);
  assert.equal(h[18 * SECTOR], 255);
  assert.equal(ascii(h.subarray(18 * SECTOR + 1, 18 * SECTOR + 6)), "CD001");
  assert.equal(h.subarray(0, 16 * SECTOR).every((b) => b === 0), true, "system area is zero");
});

interface PathRecord {
  id: string;
  extent: number;
  parent: number;
}

function readPathTable(h: Uint8Array, sector: number, size: number, little: boolean): PathRecord[] {
  const view = new DataView(h.buffer);
  const out: PathRecord[] = [];
  let at = sector * SECTOR;
  const end = at + size;
  while (at < end) {
    const len = h[at];
    out.push({
      id: ascii(h.subarray(at + 8, at + 8 + len)),
      extent: view.getUint32(at + 2, little),
      parent: view.getUint16(at + 6, little),
    });
    at += 8 + len + (len % 2);
  }
  return out;
}

Deno.test("path tables: level order, then parent, then name; L and M agree", () => {
  const p = plan([
    { path: "zeta/inner/deep/f", data: text("1") },
    { path: "alpha/b/f", data: text("2") },
    { path: "alpha/a/f", data: text("3") },
    { path: "mid/f", data: text("4") },
  ]);
  const view = new DataView(p.header.buffer);
  const pvd = 16 * SECTOR;
  const size = view.getUint32(pvd + 132, true);
  const l = readPathTable(p.header, view.getUint32(pvd + 140, true), size, true);
  const m = readPathTable(p.header, view.getUint32(pvd + 148, false), size, false);
  assert.deepEqual(m, l);
  assert.deepEqual(l.map((r) => [r.id, r.parent]), [
    ["\0", 1],
    ["ALPHA", 1],
    ["MID", 1],
    ["ZETA", 1],
    ["A", 2],
    ["B", 2],
    ["INNER", 4],
    ["DEEP", 7],
  ]);
});

interface DirRecord {
  id: Uint8Array;
  extent: number;
  size: number;
  flags: number;
}

function readDirectory(h: Uint8Array, sector: number, size: number): DirRecord[] {
  const view = new DataView(h.buffer);
  const out: DirRecord[] = [];
  for (let s = sector; s < sector + size / SECTOR; s++) {
    let at = s * SECTOR;
    while (at < (s + 1) * SECTOR && h[at] !== 0) {
      const len = h[at];
      assert.ok((at % SECTOR) + len <= SECTOR, "a record crosses a sector boundary");
      assert.equal(len % 2, 0, "record length is even");
      out.push({
        id: h.slice(at + 33, at + 33 + h[at + 32]),
        extent: view.getUint32(at + 2, true),
        size: view.getUint32(at + 10, true),
        flags: h[at + 25],
      });
      at += len;
    }
  }
  return out;
}

Deno.test("a 500-entry directory spans sectors, sorted, no record crossing a sector", () => {
  const entries: IsoEntry[] = [];
  for (let i = 499; i >= 0; i--) entries.push({ path: `many/f${i}.txt`, data: text(String(i)) });
  const p = plan(entries);
  const view = new DataView(p.header.buffer);
  const root = readDirectory(
    p.header,
    view.getUint32(16 * SECTOR + 156 + 2, true),
    view.getUint32(16 * SECTOR + 156 + 10, true),
  );
  const many = root.find((r) => ascii(r.id) === "MANY")!;
  assert.ok(many.size > SECTOR, `directory is ${many.size} bytes`);
  const records = readDirectory(p.header, many.extent, many.size);
  assert.equal(records.length, 502);
  assert.deepEqual([...records[0].id], [0]);
  assert.deepEqual([...records[1].id], [1]);
  const names = records.slice(2).map((r) => ascii(r.id));
  // ECMA-119 9.3: names compared byte by byte padded with spaces, then extensions.
  const key = (id: string) => {
    const [name, ext] = id.replace(/;1$/, "").split(".");
    return name.padEnd(31, " ") + "." + ext.padEnd(8, " ");
  };
  const sorted = [...names].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  assert.deepEqual(names, sorted);
  // Byte order, spaces padding: "F1.TXT" sorts before "F10.TXT" ("F1 " < "F10").
  assert.ok(names.indexOf("F1.TXT;1") < names.indexOf("F10.TXT;1"));
  // File data follows the header in ascending order.
  const extents = records.slice(2).map((r) => r.extent);
  assert.ok(extents.every((e) => e >= p.header.length / SECTOR));
});

Deno.test("planIso is deterministic, and the date is the only time in the image", () => {
  const entries: IsoEntry[] = [{ path: "user-data", data: text("#cloud-config\n") }, {
    path: "d/x",
    data: text("x"),
  }];
  assert.deepEqual(plan(entries).header, plan(entries).header);
  assert.notDeepEqual(plan(entries, new Date(0)).header, plan(entries).header);
  assert.deepEqual(
    plan([...entries].reverse()).header,
    plan(entries).header,
    "entry order does not matter",
  );
});

Deno.test("empty files own no sectors and point at extent 0", () => {
  const p = plan([{ path: "a", data: new Uint8Array(0) }, { path: "b", data: text("b") }]);
  assert.deepEqual(p.files.map((f) => f.node.name), ["b"]);
  assert.equal(p.totalSectors, p.header.length / SECTOR + 1);
});
