/**
 * The published-stack journey under TCG, through the real `emu` process: a maintainer
 * runs `emu image keygen` and `emu image publish`; a user with a fresh emu home and a
 * profile that names only where the releases are and the public key runs `emu start`,
 * which pulls, verifies, captures and resumes; `emu exec` runs in the guest; the next
 * start resumes without pulling. Once over a manifest on a real HTTP server, once over
 * the GitHub stand-in (`github:OWNER/REPO`), and once with the demo stack through the
 * built-in profile (no emu.json), which finds the demo release in emu's repository.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureDemoImage } from "../../fixtures/demo.ts";
import { thisInvocation } from "../../src/cli/invocation.ts";
import { ensureFastFixture } from "../../fixtures/fast.ts";
import { spawnEmu } from "../_helpers/cli.ts";
import { assetsOf, startGithubStandin } from "../_helpers/github_standin.ts";
import { startServer } from "../_helpers/http_server.ts";
import { needs, requireTool, TOOLS, VM_TOOLS } from "../_helpers/require.ts";
import { freePort, qemuProcessesWith, requireVmTools } from "../_helpers/vm_env.ts";

interface Maintainer {
  dir: string;
  publicKey: string;
  /** `emu image publish IMAGE --out DIR args…` with the maintainer's key. */
  publish(image: string, out: string, args: string[]): Promise<void>;
  /** `emu args…` as a user with a fresh home (`home`) in `dir` (no emu.json there). */
  user(home: string, args: string[], env?: Record<string, string>): ReturnType<typeof spawnEmu>;
}

async function withMaintainer(fn: (m: Maintainer) => Promise<void>) {
  if (!await requireVmTools()) return;
  const dir = await Deno.makeTempDir({ prefix: "emu-journey-" });
  const homes: string[] = [];
  const user = (home: string, args: string[], env: Record<string, string> = {}) => {
    if (!homes.includes(home)) homes.push(home);
    return spawnEmu(args, {
      cwd: dir,
      env: { EMU_HOME: join(dir, home), EMU_RUNTIME_DIR: join(dir, "run"), ...env },
    });
  };
  try {
    const keygen = await spawnEmu(["image", "keygen", "--out", join(dir, "key.pem")]);
    assert.equal(keygen.code, 0, keygen.stderr);
    await fn({
      dir,
      publicKey: JSON.parse(keygen.stdout),
      publish: async (image, out, args) => {
        const r = await spawnEmu([
          "image",
          "publish",
          image,
          "--out",
          out,
          "--key",
          join(dir, "key.pem"),
          ...args,
        ]);
        assert.equal(r.code, 0, r.stderr);
      },
      user,
    });
  } finally {
    for (const home of homes) await user(home, ["reset", "--all"]).catch(() => {});
    const left = await qemuProcessesWith(dir);
    for (const pid of left) Deno.kill(pid, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
    assert.deepEqual(left, [], "no QEMU process outlives the test");
  }
}

/** The fast fixture's profile with its image section replaced by `image`. */
async function fastProfile(dir: string, image: Record<string, unknown>): Promise<string> {
  const fixture = await ensureFastFixture({ log: () => {} });
  const profile = JSON.parse(await Deno.readTextFile(fixture.profile));
  const path = join(dir, `profile-${crypto.randomUUID().slice(0, 8)}.json`);
  await Deno.writeTextFile(path, JSON.stringify({ ...profile, image }));
  return path;
}

/** First start (pull, capture, resume), exec, stop, second start (resume only). */
async function journey(m: Maintainer, home: string, profile: string, env = {}) {
  const port = freePort();
  const first = await m.user(home, ["--config", profile, "start", "--port", `http=${port}`], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /pulling emu-fast-fixture-amd64\.qcow2\.zst \(release 1\.0\.0\)\n/);
  assert.match(
    first.stderr,
    /capturing a snapshot of emu-fast-fixture 1\.0\.0 \(once per image\): a cold boot under tcg, usually under a minute; later starts resume it in about a second\n/,
  );
  assert.match(first.stdout, /^instance default is healthy after resuming its snapshot in/);
  // The suggested commands are spelled the way this emu was run (here: by the test's deno).
  const emu = thisInvocation(Deno.env.toObject());
  assert.ok(
    first.stderr.endsWith(
      `next: ${emu} run -- CMD (the URLs and secrets in its environment) · ${emu} status · ${emu} stop\n`,
    ),
    first.stderr,
  );
  const exec = await m.user(home, ["--config", profile, "exec", "--", "uname", "-r"], env);
  assert.equal(exec.code, 0, exec.stderr);
  assert.match(exec.stdout, /-cloud-amd64\n$/, "the published kernel booted");
  assert.equal((await m.user(home, ["--config", profile, "stop"], env)).code, 0);
  const second = await m.user(home, ["--config", profile, "start", "--port", `http=${port}`], env);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /pulling|capturing/);
  assert.match(second.stderr, /resumed snapshot [0-9a-f]{16}/);
  assert.equal((await m.user(home, ["--config", profile, "stop"], env)).code, 0);
}

Deno.test(
  "journey: publish → manifest on a server → a fresh home's emu start pulls, captures, resumes; exec; resume again",
  needs(...VM_TOOLS),
  () =>
    withMaintainer(async (m) => {
      const server = startServer();
      try {
        const fixture = (await ensureFastFixture({ log: () => {} })).dir;
        const rel = join(m.dir, "rel");
        await m.publish(fixture, rel, ["--version", "1.0.0", "--base-url", `${server.url}/1.0.0`]);
        for await (const e of Deno.readDir(rel)) {
          server.file(`/1.0.0/${e.name}`, await Deno.readFile(join(rel, e.name)));
        }
        const profile = await fastProfile(m.dir, {
          source: `${server.url}/1.0.0/manifest.json`,
          public_key: m.publicKey,
        });
        await journey(m, "home-manifest", profile);
      } finally {
        await server.close();
      }
    }),
);

Deno.test(
  "journey: publish --github → the GitHub stand-in → github:OWNER/REPO starts the same way",
  needs(...VM_TOOLS),
  () =>
    withMaintainer(async (m) => {
      const github = startGithubStandin("acme", "stack");
      try {
        const fixture = (await ensureFastFixture({ log: () => {} })).dir;
        const rel = join(m.dir, "rel");
        await m.publish(fixture, rel, ["--version", "1.0.0", "--github"]);
        github.releases.push({ tag: "v1.0.0", assets: await assetsOf(rel) });
        const profile = await fastProfile(m.dir, {
          source: "github:acme/stack",
          public_key: m.publicKey,
        });
        await journey(m, "home-github", profile, {
          EMU_GITHUB_API: github.api,
          GITHUB_TOKEN: "",
          GH_TOKEN: "",
        });
        assert.ok(github.downloads.some((p) => p.endsWith("/emu-fast-fixture-amd64.vmlinuz")));
      } finally {
        await github.close();
      }
    }),
);

async function api(port: number, secret: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/notes`, {
    headers: { Authorization: `Bearer ${secret}` },
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test(
  "journey: the built-in demo profile pulls the demo release (demo-v tags) and starts it, secrets rotated",
  needs(TOOLS.debootstrap, TOOLS.mkfs, ...VM_TOOLS),
  async () => {
    if (!await requireTool("debootstrap", "debootstrap", ["--version"])) return;
    if (!await requireTool("mkfs.ext4", "e2fsprogs", ["-V"])) return;
    await withMaintainer(async (m) => {
      const github = startGithubStandin("acme", "emu");
      try {
        const demo = await ensureDemoImage({ log: () => {} });
        const rel = join(m.dir, "demo-rel");
        await m.publish(demo.dir, rel, ["--version", "0.1.0", "--github"]);
        // emu's own release and the demo's share the repository; only demo-v tags count.
        github.releases.push({ tag: "v9.9.9", assets: {} });
        github.releases.push({ tag: "demo-v0.1.0", assets: await assetsOf(rel) });
        await Deno.writeTextFile(join(m.dir, "release.pub.pem"), m.publicKey);
        const env = {
          EMU_RELEASE_REPO: "acme/emu",
          EMU_RELEASE_PUBLIC_KEY: join(m.dir, "release.pub.pem"),
          EMU_GITHUB_API: github.api,
          GITHUB_TOKEN: "",
          GH_TOKEN: "",
        };
        const [apiPort, dbPort] = [freePort(), freePort()];
        const ports = ["--port", `api=${apiPort}`, "--port", `db=${dbPort}`];
        const start = await m.user("home-demo", ["start", "--save-secrets", ...ports], env);
        assert.equal(start.code, 0, start.stderr);
        // Its qcow2 is compressed inside: published as it is, moved into place on pull.
        assert.match(start.stderr, /pulling demo-amd64\.qcow2 \(release 0\.1\.0\)\n/);
        assert.match(start.stderr, /capturing a snapshot of demo 0\.1\.0 \(once per image\)/);
        assert.match(start.stdout, new RegExp(`\\n  api +http://127\\.0\\.0\\.1:${apiPort}\\n`));
        assert.match(start.stdout, new RegExp(`\\n  db +postgres://127\\.0\\.0\\.1:${dbPort}\\n`));
        const saved = await Deno.readTextFile(
          join(m.dir, "home-demo", "instances", "default", "secrets.env"),
        );
        const secret = /^API_SECRET=([0-9a-f]{64})$/m.exec(saved)![1];
        assert.equal(await api(apiPort, secret), 200, "the rotated secret works");
        assert.equal(
          await api(apiPort, "placeholder-api-secret"),
          401,
          "the baked-in one does not",
        );
        const config = JSON.parse((await m.user("home-demo", ["config", "--json"], env)).stdout);
        assert.equal(config.profile.image.source, "github:acme/emu#demo-v");
      } finally {
        await github.close();
      }
    });
  },
);

Deno.test("demo profile: no local build and no known release → one clear error naming both ways", async () => {
  const dir = await Deno.makeTempDir({ prefix: "emu-demo-none-" });
  try {
    const r = await spawnEmu(
      ["start", "--port", `api=${freePort()}`, "--port", `db=${freePort()}`],
      {
        cwd: dir,
        env: {
          EMU_HOME: join(dir, "home"),
          EMU_RUNTIME_DIR: join(dir, "run"),
          EMU_RELEASE_REPO: "",
        },
      },
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^error\[image_unavailable\]: Cannot start the demo stack: there is no local build of it \(.*\/home\/demo\/image\) and this emu \(a source checkout\) knows no published demo release\nhint: Build it here with `deno task demo` .*or connect to the network so a released emu can pull the signed demo release from GitHub/m,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
