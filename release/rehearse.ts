/**
 * `deno task release:rehearse [--keep]`: the release workflow (.github/workflows/release.yml)
 * run end to end on this machine, twice — for this version and for a second rehearsal
 * version — with a throw-away release key and a local HTTP server standing in for GitHub:
 *
 * 1. a copy of the source tree per version (deno.json's version set), rendered with
 *    `release:render` (repository, manifest URL, public key), as the workflow does;
 * 2. the binary: `deno compile` cannot fetch its runtime here, so `deno bundle --platform
 *    deno` stands in — one JavaScript file with a `deno run` shebang, smoke-tested like
 *    the compiled one (`--version` exact, `doctor --json` complete) and archived as
 *    `emu-<target>.tar.gz` for the four Unix targets (the bundle runs wherever Deno does);
 * 3. install.sh, `SHA256SUMS` and its openssl signature, the manifest with this release
 *    added to the previous one (whose signature is checked first) and signed, the
 *    Homebrew formula (`ruby -c`);
 * 4. "publishing": the server serves each release under `/v<version>/` and the newest
 *    manifest under `/latest/`, as GitHub's `releases/latest/download` does;
 * 5. install.sh (the first release's own) installs into a fresh prefix; the installed emu
 *    runs the fast fixture (start, exec, stop); `emu upgrade --check` sees the second
 *    release; install.sh moves to the second release and back to the first.
 *
 * What only the tagged workflow can prove: `deno compile` for each target on its own
 * runner, the Windows zip, and `emu upgrade` replacing a compiled binary in place (a
 * bundle runs under `deno run`, which upgrade refuses; the swap itself is tested with
 * stand-in binaries in tests/integration/upgrade_test.ts).
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureFastFixture } from "../fixtures/fast.ts";

const { values } = parseArgs({ args: Deno.args, options: { keep: { type: "boolean" } } });
const ROOT = new URL("../", import.meta.url).pathname;
const DENO = Deno.execPath();
const UNIX_TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
];
const decoder = new TextDecoder();
const started = performance.now();

function step(text: string): void {
  console.log(`==> ${text} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; expect?: number | "any" } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const r = {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  if (options.expect !== "any" && r.code !== (options.expect ?? 0)) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${r.code} (expected ${
        options.expect ?? 0
      }):\n${r.stdout}${r.stderr}`,
    );
  }
  return r;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`rehearsal check failed: ${what}`);
  console.log(`    ok: ${what}`);
}

/** The working tree (tracked and untracked, not ignored) copied to `to`. */
async function copySource(to: string): Promise<void> {
  const files =
    (await run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      cwd: ROOT,
    })).stdout.split("\0").filter((f) => f !== "");
  for (const file of files) {
    const from = join(ROOT, file);
    const info = await Deno.lstat(from).catch(() => null);
    if (!info?.isFile) continue;
    await Deno.mkdir(join(to, file, ".."), { recursive: true });
    await Deno.copyFile(from, join(to, file));
  }
}

/** A server for `root`: `/v<version>/<file>` and `/latest/<file>` (the newest release). */
function serve(root: string) {
  let latest = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    const m = /^\/(v[^/]+|latest)\/([^/]+)$/.exec(path);
    if (!m) return new Response("not found", { status: 404 });
    const dir = m[1] === "latest" ? latest : m[1];
    const body = await Deno.readFile(join(root, dir, m[2])).catch(() => null);
    return body ? new Response(body) : new Response("not found", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    setLatest: (tag: string) => latest = tag,
    close: () => server.shutdown(),
  };
}

const work = await Deno.makeTempDir({ prefix: "emu-rehearsal-" });
const server = serve(join(work, "releases"));
try {
  const base = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).version as string;
  const [major, minor, patch] = base.split(/[.-]/).map(Number);
  const versions = [base, `${major}.${minor}.${patch + 1}`];
  const manifestUrl = `${server.url}/latest/manifest.json`;
  const repo = "rehearsal/emu";

  step("a throw-away release key (openssl, ECDSA P-256)");
  const key = join(work, "signing.pem");
  const pub = join(work, "release.pub.pem");
  await run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
  await run("openssl", ["ec", "-in", key, "-pubout", "-out", pub]);

  let previous: string | null = null;
  for (const version of versions) {
    const tag = `v${version}`;
    const src = join(work, `src-${version}`);
    const dist = join(work, "releases", tag);
    step(`${tag}: source copy, version set, release markers rendered`);
    await copySource(src);
    const denoJson = JSON.parse(await Deno.readTextFile(join(src, "deno.json")));
    await Deno.writeTextFile(
      join(src, "deno.json"),
      JSON.stringify({ ...denoJson, version }, null, 2) + "\n",
    );
    const task = (name: string, args: string[]) =>
      run(DENO, ["task", "-q", name, ...args], { cwd: src });
    await task("release:render", [
      "--repo",
      repo,
      "--manifest-url",
      manifestUrl,
      "--public-key",
      pub,
    ]);

    step(`${tag}: the binary (deno bundle standing in for deno compile), smoke test, archives`);
    const bundle = join(src, "dist", "emu.js");
    await run(DENO, ["bundle", "--quiet", "--platform", "deno", "-o", bundle, "main.ts"], {
      cwd: src,
    });
    const exe = join(src, "dist", "emu");
    await Deno.writeTextFile(
      exe,
      `#!/usr/bin/env -S deno run --allow-all --no-config\n${await Deno.readTextFile(bundle)}`,
    );
    await Deno.chmod(exe, 0o755);
    await Deno.remove(bundle);
    const smoke = await run(exe, ["--version"], {
      env: { PATH: `${join(DENO, "..")}:${Deno.env.get("PATH")}` },
    });
    check(smoke.stdout === `${version}\n`, `${tag}: emu --version prints exactly ${version}`);
    // doctor exits 1 when a check fails (no KVM, say); its JSON report must be complete.
    const doctor = await run(exe, ["doctor", "--json"], {
      env: {
        EMU_HOME: join(work, "doctor-home"),
        PATH: `${join(DENO, "..")}:${Deno.env.get("PATH")}`,
      },
      expect: "any",
    });
    check(Array.isArray(JSON.parse(doctor.stdout).checks), `${tag}: emu doctor --json is complete`);
    await Deno.mkdir(dist, { recursive: true });
    for (const target of UNIX_TARGETS) {
      await run("tar", [
        "-czf",
        join(dist, `emu-${target}.tar.gz`),
        "-C",
        join(src, "dist"),
        "emu",
      ]);
    }

    step(`${tag}: install.sh, SHA256SUMS and its signature`);
    await Deno.copyFile(join(src, "install.sh"), join(dist, "install.sh"));
    await task("release:sums", [dist]);
    const sums = join(dist, "SHA256SUMS");
    await run("openssl", ["dgst", "-sha256", "-sign", key, "-out", `${sums}.sig`, sums]);
    await run("openssl", ["dgst", "-sha256", "-verify", pub, "-signature", `${sums}.sig`, sums]);

    step(`${tag}: the manifest, with the previous one's releases (its signature checked first)`);
    const manifestArgs = ["--version", tag, "--base-url", `${server.url}/${tag}`, "--dir", dist];
    if (previous) {
      await run("openssl", [
        ...["dgst", "-sha256", "-verify", pub],
        ...["-signature", `${previous}.sig`, previous],
      ]);
      manifestArgs.push("--manifest", previous);
    }
    const manifest = join(work, `manifest-${version}.json`);
    await task("release:manifest", [...manifestArgs, "--out", manifest]);
    await Deno.copyFile(manifest, join(dist, "manifest.json"));
    const signed = join(dist, "manifest.json");
    await run("openssl", ["dgst", "-sha256", "-sign", key, "-out", `${signed}.sig`, signed]);
    await run("openssl", [
      "dgst",
      "-sha256",
      "-verify",
      pub,
      "-signature",
      `${signed}.sig`,
      signed,
    ]);
    await Deno.copyFile(`${signed}.sig`, `${manifest}.sig`);
    previous = manifest;

    step(`${tag}: the Homebrew formula`);
    const formula = join(work, `emu-${version}.rb`);
    await task("release:formula", [
      ...["--version", tag, "--base-url", `${server.url}/${tag}`],
      ...["--sums", sums, "--out", formula],
    ]);
    await run("ruby", ["-c", formula]);
    check(
      (await Deno.readTextFile(formula)).includes(`version "${version}"`),
      `${tag}: the formula names ${version}`,
    );
    server.setLatest(tag);
    if (version === versions[0]) {
      // The first release is what a user installs; the second arrives later.
      step(`${tag} published: install.sh installs it into a fresh prefix`);
      await installAndRun(work, server.url, versions);
    }
  }

  step("upgrades: emu upgrade --check sees the second release; install.sh moves to it and back");
  await upgrades(work, server.url, versions);
  step(`rehearsal passed: ${versions.map((v) => `v${v}`).join(" and ")}`);
} finally {
  await server.close();
  if (values.keep) console.log(`kept: ${work}`);
  else await Deno.remove(work, { recursive: true }).catch(() => {});
}

function userEnv(work: string): Record<string, string> {
  return {
    HOME: join(work, "user"),
    EMU_HOME: join(work, "user", ".emu-home"),
    EMU_RUNTIME_DIR: join(work, "user", "run"),
    PATH: `${join(DENO, "..")}:${Deno.env.get("PATH")}`,
  };
}

async function install(work: string, url: string, version: string): Promise<void> {
  const script = join(work, "releases", `v${version}`, "install.sh");
  const prefix = join(work, "user", "prefix");
  await run("sh", [
    script,
    "--version",
    version,
    "--prefix",
    prefix,
    "--base-url",
    `${url}/v${version}`,
  ], {
    env: userEnv(work),
  });
}

async function installAndRun(work: string, url: string, versions: string[]): Promise<void> {
  await Deno.mkdir(join(work, "user"), { recursive: true });
  await install(work, url, versions[0]);
  const emu = join(work, "user", "prefix", "bin", "emu");
  const v = await run(emu, ["--version"], { env: userEnv(work) });
  check(v.stdout === `${versions[0]}\n`, `the installed emu is ${versions[0]}`);
  const fixture = await ensureFastFixture({ log: () => {} });
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const at = ["--config", fixture.profile];
  const start = await run(emu, [...at, "start", "--port", `http=${port}`], { env: userEnv(work) });
  check(
    /instance default is healthy/.test(start.stdout),
    "the installed emu started the fast fixture",
  );
  const exec = await run(emu, [...at, "exec", "--", "echo", "rehearsed"], { env: userEnv(work) });
  check(exec.stdout === "rehearsed\n", "emu exec ran in the guest");
  await run(emu, [...at, "stop"], { env: userEnv(work) });
  await run(emu, [...at, "reset", "--all"], { env: userEnv(work) });
}

async function upgrades(work: string, url: string, versions: string[]): Promise<void> {
  const emu = join(work, "user", "prefix", "bin", "emu");
  const checkUpdate = await run(emu, ["upgrade", "--check"], { env: userEnv(work), expect: 10 });
  check(
    checkUpdate.stdout.includes(versions[1]),
    `emu upgrade --check (exit 10) names ${versions[1]}`,
  );
  const refused = await run(emu, ["upgrade"], { env: userEnv(work), expect: 1 });
  check(
    /upgrade_refused.*deno run/.test(refused.stderr),
    "emu upgrade refuses to replace a bundle run by deno (only a compiled binary swaps itself)",
  );
  await install(work, url, versions[1]);
  let v = await run(emu, ["--version"], { env: userEnv(work) });
  check(v.stdout === `${versions[1]}\n`, `install.sh moved the install to ${versions[1]}`);
  const upToDate = await run(emu, ["upgrade", "--check"], { env: userEnv(work) });
  check(upToDate.code === 0, "emu upgrade --check: up to date (exit 0)");
  await install(work, url, versions[0]);
  v = await run(emu, ["--version"], { env: userEnv(work) });
  check(v.stdout === `${versions[0]}\n`, `install.sh moved it back to ${versions[0]}`);
}
