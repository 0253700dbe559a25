/**
 * `emu upgrade` (docs/architecture.md, «Distribution and self-update»): the signed-manifest updater
 * with rollback. Manifest → release → this target's archive → SHA256SUMS verified against the
 * release key → archive verified against SHA256SUMS → unpacked → the new binary placed next to the
 * current one and run with `--version` → renamed over it, keeping `<exe>.previous` → run again; any
 * failure puts the old binary back.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { download, type DownloadProgress } from "../artifact/download.ts";
import { fetchSmall } from "../artifact/fetch_small.ts";
import { pickRelease, printable } from "../artifact/manifest.ts";
import { checkNotRollback, rememberRelease } from "../artifact/release_memory.ts";
import { MAX_SHA256SUMS_BYTES, parseSha256Sums } from "../artifact/sha256sums.ts";
import { fetchSignedManifest, MAX_SIGNATURE_BYTES } from "../artifact/signed_manifest.ts";
import { verifySignature } from "../artifact/signature.ts";
import { EmuError } from "../errors.ts";
import { runProgram } from "../process.ts";
import { archiveName, artifactName, compareVersions, type Target } from "./target.ts";

/** Options of {@linkcode upgrade}. */
export interface UpgradeOptions {
  manifest: string;
  publicKey: string;
  currentVersion: string;
  target: Target;
  /** The executable to replace. */
  executable: string;
  /** `--to V`: this release (may be older: a downgrade); default the latest stable. */
  to?: string;
  /** Only say whether an update is available. */
  check?: boolean;
  /** Download and verify, change nothing. */
  dryRun?: boolean;
  downloadsDir: string;
  /** The file that remembers the newest release seen (rollback protection). */
  releasesSeen: string;
  signal?: AbortSignal;
  onMessage?: (text: string) => void;
  onProgress?: (progress: DownloadProgress) => void;
}

/** What {@linkcode upgrade} did. */
export interface UpgradeResult {
  status: "up-to-date" | "available" | "upgraded" | "verified";
  from: string;
  to: string;
  executable: string;
  previous: string | null;
}

/** Why an executable may not be replaced by emu itself, or `null`. */
export function replaceRefusal(executable: string): EmuError | null {
  if (/\/Cellar\/emu\//.test(executable)) {
    return new EmuError("upgrade_refused", `Cannot upgrade ${executable}: Homebrew installed it`, {
      hint: "Run `brew upgrade emu`.",
    });
  }
  const name = basename(executable).toLowerCase();
  if (name === "deno" || name === "deno.exe") {
    return new EmuError(
      "upgrade_refused",
      "Cannot upgrade: this emu runs under `deno run`, not as a compiled binary",
      {
        hint:
          "Update the source checkout (git pull) instead; `emu upgrade` replaces installed binaries.",
      },
    );
  }
  return null;
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await runProgram(cmd, args);
  return { ok: r.ok, out: (r.spawnError ?? r.stdout + r.stderr).trim() };
}

/** Upgrades (or checks, or dry-runs); see the module doc. */
export async function upgrade(options: UpgradeOptions): Promise<UpgradeResult> {
  const say = options.onMessage ?? (() => {});
  // Checking replaces nothing: a Homebrew or `deno run` emu may ask what is new too.
  const refusal = options.check ? null : replaceRefusal(options.executable);
  if (refusal) throw refusal;
  const manifest = await fetchSignedManifest(options.manifest, options.publicKey, options.signal);
  await checkNotRollback(options.releasesSeen, options.manifest, manifest.latest_stable, {
    named: options.to !== undefined,
    flag: "--to",
  });
  await rememberRelease(options.releasesSeen, options.manifest, manifest.latest_stable);
  const release = pickRelease(manifest, options.to ?? "latest", "--to");
  const base = {
    from: options.currentVersion,
    to: release.version,
    executable: options.executable,
    previous: null,
  };
  const newer = compareVersions(release.version, options.currentVersion) > 0;
  if (options.to === undefined && !newer) return { ...base, status: "up-to-date" };
  if (options.to !== undefined && compareVersions(release.version, options.currentVersion) === 0) {
    return { ...base, status: "up-to-date" };
  }
  if (options.check) return { ...base, status: "available" };

  const artifact = artifactName(options.target);
  const url = release.artifacts[artifact];
  if (url === undefined) {
    throw new EmuError(
      "release_not_found",
      `Cannot upgrade to ${release.version}: it has no build for ${options.target}`,
      { hint: "Pick another version with --to, or download emu by hand from the releases page." },
    );
  }
  if (options.target.endsWith("windows-msvc")) {
    throw new EmuError("upgrade_refused", "Cannot upgrade on Windows yet: the release is a .zip", {
      hint: `Download ${archiveName(options.target)} from the releases page.`,
    });
  }
  const sums = await fetchSmall(
    release.sha256sums_url,
    MAX_SHA256SUMS_BYTES,
    "SHA256SUMS",
    options.signal,
  );
  const sig = await fetchSmall(
    release.sha256sums_sig_url,
    MAX_SIGNATURE_BYTES,
    "SHA256SUMS.sig",
    options.signal,
  );
  await verifySignature(options.publicKey, sums, sig, `SHA256SUMS of emu ${release.version}`);
  const fileName = decodeURIComponent(new URL(url).pathname.split("/").pop()!);
  const sha256 = parseSha256Sums(new TextDecoder().decode(sums)).get(fileName);
  if (sha256 === undefined) {
    throw new EmuError(
      "checksums_invalid",
      `Cannot upgrade to ${release.version}: SHA256SUMS does not list ${fileName}`,
      { hint: "The release is incomplete; nothing was changed." },
    );
  }

  const dir = dirname(options.executable);
  const work = await Deno.makeTempDir({ dir, prefix: ".emu-upgrade-" }).catch((err) => {
    throw new EmuError("io", `Cannot upgrade ${options.executable}: ${dir} is not writable`, {
      cause: err,
      hint: "Run emu upgrade as the user who installed emu (or reinstall with install.sh).",
    });
  });
  const next = `${options.executable}.next`;
  const previous = `${options.executable}.previous`;
  try {
    say(`downloading emu ${release.version} (${fileName})`);
    const archive = join(work, fileName);
    await download({
      url,
      dest: archive,
      partDir: options.downloadsDir,
      partId: sha256,
      sha256,
      zstd: false,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const unpacked = await run("tar", ["-xzf", archive, "-C", work]);
    const binary = join(work, "emu");
    if (!unpacked.ok || !(await Deno.stat(binary).then((s) => s.isFile, () => false))) {
      throw new EmuError("download_failed", `Cannot upgrade: ${fileName} holds no emu executable`, {
        hint: "The release is broken; nothing was changed.",
      });
    }
    if (options.dryRun) return { ...base, status: "verified" };

    await Deno.copyFile(binary, next);
    await Deno.chmod(next, 0o755);
    const trial = await run(next, ["--version"]);
    const reported = printable(trial.out.split("\n")[0] ?? "").trim();
    if (!trial.ok) {
      throw new EmuError(
        "download_failed",
        `Cannot upgrade to ${release.version}: the new binary does not run (\`--version\`: ${
          reported || "no output"
        }); emu ${options.currentVersion} is kept`,
        { hint: "Report this with your OS and CPU; nothing was changed." },
      );
    }
    // The signed manifest names the version; the binary must be that version exactly.
    if (reported !== release.version) {
      throw new EmuError(
        "upgrade_refused",
        `Cannot upgrade to ${release.version}: the new binary says it is ${
          JSON.stringify(reported)
        }; emu ${options.currentVersion} is kept`,
        { hint: "The release is mislabelled or tampered with; nothing was changed." },
      );
    }
    await Deno.remove(previous).catch(() => {});
    await Deno.rename(options.executable, previous);
    try {
      await Deno.rename(next, options.executable);
      const after = await run(options.executable, ["--version"]);
      if (!after.ok) throw new Error(`--version failed after the swap: ${after.out}`);
    } catch (err) {
      // Put the old binary back exactly where it was.
      await Deno.rename(previous, options.executable);
      throw new EmuError(
        "io",
        `Cannot upgrade ${options.executable}: ${
          (err as Error).message
        }; rolled back to ${options.currentVersion}`,
        { cause: err },
      );
    }
    say(`the previous binary is kept as ${previous}`);
    return { ...base, status: "upgraded", previous };
  } finally {
    await Deno.remove(next).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
