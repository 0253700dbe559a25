/**
 * Rollback protection: emu remembers, per release source, the newest release it has
 * seen as the source's latest. A source that later offers an older one as its latest (a
 * replayed signed manifest, a frozen mirror, a withdrawn tag) is refused with
 * `rollback_refused` unless the user names the version. The decision is pure; the
 * memory is one small private file in the emu home (`releases-seen.json`).
 *
 * @module
 */
import { writeTextAtomic } from "../atomic_write.ts";
import { EmuError } from "../errors.ts";
import { compareVersions, parseVersion } from "./versions.ts";

interface Seen {
  newest: string;
  seen_at: string;
}

/**
 * The refusal for a source whose latest release `offered` is older than `newestSeen`,
 * or `null` when it may be used.
 *
 * @example
 * ```ts
 * import { rollbackRefusal } from "./release_memory.ts";
 * if (rollbackRefusal("s", "1.4.0", "1.5.0", "--version")?.code !== "rollback_refused") throw new Error();
 * if (rollbackRefusal("s", "1.5.0", "1.5.0", "--version") !== null) throw new Error();
 * ```
 */
export function rollbackRefusal(
  source: string,
  offered: string,
  newestSeen: string | null,
  flag: string,
): EmuError | null {
  if (newestSeen === null || compareVersions(offered, newestSeen) >= 0) return null;
  return new EmuError(
    "rollback_refused",
    `Cannot use ${offered} as the latest release of ${source}: emu has already seen ${newestSeen} there, so this would go back to an older release`,
    {
      hint:
        `A server replaying an old release list looks like this. If the publisher withdrew ${newestSeen} on purpose, name the version: ${flag} ${offered}.`,
    },
  );
}

async function readAll(file: string): Promise<Record<string, Seen>> {
  try {
    const data = JSON.parse(await Deno.readTextFile(file));
    return typeof data === "object" && data !== null && !Array.isArray(data) ? data : {};
  } catch {
    return {};
  }
}

/** The newest release seen as the latest of `source`, or `null`. */
export async function newestSeen(file: string, source: string): Promise<string | null> {
  const all = await readAll(file);
  const entry = Object.hasOwn(all, source) ? all[source] : null;
  return typeof entry?.newest === "string" && parseVersion(entry.newest) !== null
    ? entry.newest
    : null;
}

/**
 * Refuses a rollback of `source`'s latest release (see {@linkcode rollbackRefusal}); a
 * release the user named (`named`) is always allowed.
 */
export async function checkNotRollback(
  file: string,
  source: string,
  offered: string,
  options: { named: boolean; flag: string },
): Promise<void> {
  if (options.named) return;
  const refusal = rollbackRefusal(source, offered, await newestSeen(file, source), options.flag);
  if (refusal) throw refusal;
}

/** Records `version` as seen from `source` when it is newer than what was seen. */
export async function rememberRelease(
  file: string,
  source: string,
  version: string,
): Promise<void> {
  const all = await readAll(file);
  const current = Object.hasOwn(all, source) ? all[source]?.newest : undefined;
  if (
    typeof current === "string" && parseVersion(current) !== null &&
    compareVersions(current, version) >= 0
  ) return;
  all[source] = { newest: version, seen_at: new Date().toISOString() };
  await writeTextAtomic(file, `${JSON.stringify(all, null, 2)}\n`);
}
