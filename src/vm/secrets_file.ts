/**
 * The one place secrets may touch the host disk (docs/architecture.md, «Start: resume and
 * rotation»): `instances/<name>/secrets.env`, mode 0600, written only when the user asks (`emu
 * start --save-secrets`) so that later `emu run` calls against the running instance can hand them
 * on. Any start that rotates removes a stale file first; `emu stop` and `emu reset` remove it.
 *
 * @module
 */
import { keyValueLines } from "./secrets.ts";

/** Writes `secrets` to `path` (0600 from creation: a temp file, then rename). */
export async function writeSecretsFile(
  path: string,
  secrets: Record<string, string>,
): Promise<void> {
  const temp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(temp, keyValueLines(secrets), { mode: 0o600, createNew: true });
    // A umask cannot widen 0600, but an existing ACL default could: set it explicitly.
    await Deno.chmod(temp, 0o600);
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

/** The saved secrets, or `null` when there is no file. */
export async function readSecretsFile(path: string): Promise<Record<string, string> | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return null;
  }
  const secrets: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) secrets[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return secrets;
}

/** Removes the file (missing is fine). */
export async function removeSecretsFile(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}
