/**
 * Host port checks before QEMU starts: a busy port is reported with who holds it (an emu
 * instance, or a process found through /proc on Linux), not as a QEMU failure.
 *
 * @module
 */
import { join } from "node:path";
import { EmuError } from "../errors.ts";
import { processExists } from "../qemu/process.ts";
import { readRecord } from "./record.ts";
import { INSTANCE_FILES } from "../config/filenames.ts";

/** A free TCP port on 127.0.0.1, chosen by the OS. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Whether 127.0.0.1:`port` can be bound now. */
export function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** Who listens on `port`: `emu instance "x"`, `process 123 (nginx)`, or null if unknown. */
export async function portHolder(port: number, instancesDir: string): Promise<string | null> {
  try {
    for await (const e of Deno.readDir(instancesDir)) {
      const record = await readRecord(join(instancesDir, e.name, INSTANCE_FILES.record));
      if (
        record?.pid && processExists(record.pid) &&
        Object.values(record.ports).some((p) => p.host === port)
      ) {
        return `emu instance "${record.name}"`;
      }
    }
  } catch { /* no instances yet */ }
  return Deno.build.os === "linux" ? await linuxPortOwner(port) : null;
}

async function linuxPortOwner(port: number): Promise<string | null> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await Deno.readTextFile(table).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN.
      if (f.length > 9 && f[3] === "0A" && parseInt(f[1].split(":")[1], 16) === port) {
        inodes.add(f[9]);
      }
    }
  }
  if (inodes.size === 0) return null;
  for await (const proc of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(proc.name)) continue;
    try {
      for await (const fd of Deno.readDir(`/proc/${proc.name}/fd`)) {
        const target = await Deno.readLink(`/proc/${proc.name}/fd/${fd.name}`).catch(() => "");
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode && inodes.has(inode)) {
          const comm = (await Deno.readTextFile(`/proc/${proc.name}/comm`).catch(() => "?")).trim();
          return `process ${proc.name} (${comm})`;
        }
      }
    } catch { /* not ours to read, or gone */ }
  }
  return "another process";
}

/**
 * Checks every forward's host port before QEMU starts.
 *
 * @throws {EmuError} `port_in_use` naming the port, its profile name and its holder.
 */
export async function assertPortsFree(
  forwards: Record<string, { host: number }>,
  instancesDir: string,
): Promise<void> {
  for (const [name, f] of Object.entries(forwards)) {
    if (portFree(f.host)) continue;
    const holder = await portHolder(f.host, instancesDir);
    throw new EmuError(
      "port_in_use",
      `Cannot forward port ${name}: 127.0.0.1:${f.host} is in use by ${
        holder ?? "another process"
      }`,
      {
        hint:
          `Stop it, or pick another host port: emu start --port ${name}=PORT (or ports.${name}.host in emu.json).`,
      },
    );
  }
}
