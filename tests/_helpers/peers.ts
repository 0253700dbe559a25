/** Real protocol peers for tests: QEMU with no machine (QMP) and qemu-ga on the host. */
import { join } from "node:path";
import { requireTool } from "./require.ts";

/** A started peer process and its socket. */
export interface Peer {
  socket: string;
  process: Deno.ChildProcess;
  /** Kills (SIGKILL) and reaps the process; safe to call twice. */
  kill(): Promise<void>;
}

function peer(socket: string, process: Deno.ChildProcess): Peer {
  let status: Promise<Deno.CommandStatus> | null = null;
  return {
    socket,
    process,
    kill: async () => {
      if (status === null) {
        try {
          process.kill("SIGKILL");
        } catch { /* already gone */ }
        status = process.status;
      }
      await status;
    },
  };
}

/** `qemu-system-x86_64 -machine none` with a QMP socket in `dir`; null if QEMU is missing and allowed to be. */
export async function startQemuNone(dir: string, extraArgs: string[] = []): Promise<Peer | null> {
  if (!await requireTool("qemu-system-x86_64", "qemu-system-x86 (from bookworm-backports)")) {
    return null;
  }
  const socket = join(dir, "qmp.sock");
  const process = new Deno.Command("qemu-system-x86_64", {
    args: [
      "-machine",
      "none",
      "-nodefaults",
      "-display",
      "none",
      "-qmp",
      `unix:${socket},server=on,wait=off`,
      ...extraArgs,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return peer(socket, process);
}

/** `qemu-ga` listening on a unix socket in `dir`, running on the host as a real agent peer. */
export async function startQemuGa(dir: string): Promise<Peer | null> {
  if (!await requireTool("qemu-ga", "qemu-guest-agent (from bookworm-backports)", ["--version"])) {
    return null;
  }
  const socket = join(dir, "qga.sock");
  const state = join(dir, "qga-state");
  await Deno.mkdir(state, { recursive: true });
  const process = new Deno.Command("qemu-ga", {
    args: ["-m", "unix-listen", "-p", socket, "-t", state, "-l", join(dir, "qga.log")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return peer(socket, process);
}
