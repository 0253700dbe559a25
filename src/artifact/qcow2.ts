/**
 * Recognising a qcow2 file by its magic ("QFI\xfb"), before QEMU is asked to use it.
 *
 * @module
 */

/** The first four bytes of every qcow2 file. */
export const QCOW2_MAGIC = new Uint8Array([0x51, 0x46, 0x49, 0xfb]);

/** True when `head` starts with the qcow2 magic. */
export function isQcow2Header(head: Uint8Array): boolean {
  return head.length >= 4 && QCOW2_MAGIC.every((b, i) => head[i] === b);
}

/** True when the file at `path` exists and starts with the qcow2 magic. */
export async function isQcow2File(path: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return false;
  }
  try {
    const head = new Uint8Array(4);
    const n = await file.read(head);
    return isQcow2Header(head.subarray(0, n ?? 0));
  } finally {
    file.close();
  }
}
