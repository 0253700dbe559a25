/**
 * A qcow2 overlay written by emu itself: the run disk of every start is an empty qcow2
 * file whose backing file is the capture (or image) disk. `qemu-img create` made it
 * before, a process of its own on every resume (about 8–10 ms of a 0.4 s start); the file
 * is four clusters of fixed layout, so it is written here, byte for byte what QEMU 10's
 * `qemu-img create -f qcow2 -b BACKING -F qcow2` writes (a test compares them).
 *
 * Layout (cluster size 64 KiB): cluster 0 the header, its extensions (backing format,
 * feature names) and the backing file's name; 1 the refcount table; 2 its one refcount
 * block; 3… the L1 table, all zero (nothing allocated: every read goes to the backing
 * file). See QEMU's docs/interop/qcow2.txt.
 *
 * @module
 */
import { EmuError } from "../errors.ts";
import { isQcow2Header, QCOW2_MAGIC } from "../artifact/qcow2.ts";

const CLUSTER_BITS = 16;
const CLUSTER = 1 << CLUSTER_BITS;
/** Header fields up to and including the compression type, padded: version 3. */
const HEADER_LENGTH = 112;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_NAMES = 0x6803f857;
/** QEMU's own limit on the L1 table (QCOW_MAX_L1_SIZE, 32 MiB): 2 PiB of disk. */
const MAX_L1_ENTRIES = (32 * 1024 * 1024) / 8;

/** The feature name table QEMU writes into every qcow2 file it creates: type, bit, name. */
const FEATURE_NAMES: readonly [number, number, string][] = [
  [0, 0, "dirty bit"],
  [0, 1, "corrupt bit"],
  [0, 2, "external data file"],
  [0, 3, "compression type"],
  [0, 4, "extended L2 entries"],
  [1, 0, "lazy refcounts"],
  [2, 0, "bitmaps"],
  [2, 1, "raw external data"],
];

/**
 * The bytes of an empty qcow2 (v3) overlay of `backing` (a qcow2 file of `virtualSize`
 * bytes), naming it by the path given (QEMU opens it from there: give an absolute path).
 *
 * @example
 * ```ts
 * import { qcow2OverlayBytes } from "./qcow2_overlay.ts";
 * const bytes = qcow2OverlayBytes("/images/disk.qcow2", 4n * 2n ** 30n);
 * if (bytes.length !== 3 * 65536 + 8 * 8) throw new Error(); // 4 GiB: an L1 of 8 entries
 * ```
 */
export function qcow2OverlayBytes(backing: string, virtualSize: bigint): Uint8Array {
  const name = new TextEncoder().encode(backing);
  // Each L1 entry maps one L2 table: cluster/8 entries of one cluster each.
  const perL1 = BigInt(CLUSTER) * BigInt(CLUSTER / 8);
  const l1Entries = Number((virtualSize + perL1 - 1n) / perL1);
  if (l1Entries > MAX_L1_ENTRIES) {
    throw new EmuError(
      "image_invalid",
      `Cannot make an overlay of a ${virtualSize}-byte disk: QEMU's qcow2 goes up to ${
        BigInt(MAX_L1_ENTRIES) * perL1
      } bytes`,
      { hint: "The image's qcow2 header declares an impossible size; rebuild or re-pull it." },
    );
  }
  const l1Clusters = Math.max(1, Math.ceil((l1Entries * 8) / CLUSTER));
  const clusters = 3 + l1Clusters; // at most 515: one refcount block (32 768) covers them
  const bytes = new Uint8Array(3 * CLUSTER + l1Entries * 8);
  const view = new DataView(bytes.buffer);
  bytes.set(QCOW2_MAGIC);
  view.setUint32(4, 3); // version
  // 8: backing file offset and 16: its length, set below
  view.setUint32(20, CLUSTER_BITS);
  view.setBigUint64(24, virtualSize);
  // 32: no encryption
  view.setUint32(36, l1Entries);
  view.setBigUint64(40, BigInt(3 * CLUSTER)); // L1 table
  view.setBigUint64(48, BigInt(CLUSTER)); // refcount table
  view.setUint32(56, 1); // refcount table clusters
  // 60: no snapshots; 72, 80, 88: no feature bits
  view.setUint32(96, 4); // refcount order: 16-bit refcounts
  view.setUint32(100, HEADER_LENGTH);
  // 104: compression type zlib (the default), then padding

  let at = HEADER_LENGTH;
  const extension = (type: number, data: Uint8Array) => {
    view.setUint32(at, type);
    view.setUint32(at + 4, data.length);
    bytes.set(data, at + 8);
    at += 8 + Math.ceil(data.length / 8) * 8;
  };
  extension(EXT_BACKING_FORMAT, new TextEncoder().encode("qcow2"));
  const names = new Uint8Array(FEATURE_NAMES.length * 48);
  FEATURE_NAMES.forEach(([type, bit, text], i) => {
    names[i * 48] = type;
    names[i * 48 + 1] = bit;
    names.set(new TextEncoder().encode(text), i * 48 + 2);
  });
  extension(EXT_FEATURE_NAMES, names);
  at += 8; // the end-of-extensions marker: type 0, length 0
  if (at + name.length > CLUSTER) {
    throw new EmuError("internal", `Cannot make an overlay: the backing path is too long`);
  }
  bytes.set(name, at);
  view.setBigUint64(8, BigInt(at));
  view.setUint32(16, name.length);

  view.setBigUint64(CLUSTER, BigInt(2 * CLUSTER)); // the refcount table's one block
  for (let c = 0; c < clusters; c++) view.setUint16(2 * CLUSTER + 2 * c, 1);
  return bytes;
}

/** The virtual size of the qcow2 file at `path`, from its header. */
export async function qcow2VirtualSize(path: string): Promise<bigint> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(32);
  let got = 0;
  while (got < head.length) {
    const n = await file.read(head.subarray(got));
    if (n === null) break;
    got += n;
  }
  if (got < head.length || !isQcow2Header(head)) {
    throw new EmuError(
      "image_invalid",
      `Cannot make an overlay of ${path}: it is not a qcow2 file`,
    );
  }
  return new DataView(head.buffer).getBigUint64(24);
}

/**
 * Creates `overlay` backed by `backing` (an absolute path: QEMU resolves it after
 * changing directory), atomically (temp file, rename), mode 0600.
 */
export async function createOverlay(backing: string, overlay: string): Promise<void> {
  const bytes = qcow2OverlayBytes(backing, await qcow2VirtualSize(backing));
  const temp = `${overlay}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(temp, bytes, { mode: 0o600, createNew: true });
    await Deno.rename(temp, overlay);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}
