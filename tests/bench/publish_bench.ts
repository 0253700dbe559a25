/**
 * Publishing and pulling the demo stack image (fixtures/out/demo, built by
 * `deno task demo-image`; the bench says so and stops when it is missing):
 *
 * 1. `emu image publish` (hash + zstd + sign, in process) at zstd levels 1, 3 (the
 *    default) and 9, against `zstd -q -c | sha256sum` at level 3, same run; each level's
 *    compressed size is printed.
 * 2. `emu pull` of that release (a fresh emu home per run: manifest and signatures
 *    checked, download, verify, decompress, install) from `python3 -m http.server` on
 *    127.0.0.1, against `curl -s URL | zstd -d | tee FILE | sha256sum`, then `sync FILE`.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { generateSigningKey } from "../../src/artifact/signing.ts";
import { publishImage } from "../../src/image/publish.ts";
import { startStaticServer } from "./_static_server.ts";

const DEMO = new URL("../../fixtures/out/demo/", import.meta.url).pathname;
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const present = await Deno.stat(join(DEMO, "image.json")).then(() => true, () => false);
if (!present) {
  console.error(`SKIPPED: ${DEMO} is missing; build it with \`deno task demo-image\` (root)`);
} else {
  const dir = await Deno.makeTempDir({ prefix: "emu-publish-bench-" });
  const { key } = generateSigningKey();
  const image = JSON.parse(await Deno.readTextFile(join(DEMO, "image.json")));
  const disk = join(DEMO, image.disk);
  console.log(`demo image: ${(image.size / 2 ** 20).toFixed(0)} MiB qcow2 (internally zstd)`);
  let run = 0;
  /** Publishes `imageDir` (at `level`, or the default) to a scratch directory; prints the disk. */
  const publish = async (imageDir: string, level?: number) => {
    const out = join(dir, `out-${run++}`);
    const result = await publishImage({
      imageDir,
      out,
      key,
      level,
      version: "0.1.0",
      baseUrl: "http://127.0.0.1/release",
    });
    const published = result.files[0];
    console.log(
      `level ${result.level ?? "none"}: ${published.name}, ${
        (published.bytes / 2 ** 20).toFixed(1)
      } MiB`,
    );
    await Deno.remove(out, { recursive: true });
  };
  const zstdPeer = (file: string) => async () => {
    const r = await new Deno.Command("sh", {
      args: ["-c", `zstd -3 -q -c ${file} | sha256sum > /dev/null`],
    }).output();
    if (!r.success) throw new Error("zstd failed");
  };

  const group = { group: "publish the demo image", n: 3, warmup: 1 };
  Deno.bench("zstd -3 -q -c | sha256sum", { ...group, baseline: true }, zstdPeer(disk));
  for (const level of [1, 3, 9]) {
    Deno.bench(`emu image publish, zstd level ${level}`, group, async () => {
      await publish(DEMO, level);
    });
  }
  Deno.bench("emu image publish, default (level 3, or as it is)", group, async () => {
    await publish(DEMO);
  });

  // The same disk with its clusters uncompressed (qemu-img convert without -c): where the
  // level matters.
  const plainDir = join(dir, "uncompressed");
  await Deno.mkdir(plainDir);
  const plainDisk = join(plainDir, "demo.qcow2");
  const convert = await new Deno.Command("qemu-img", {
    args: ["convert", "-O", "qcow2", disk, plainDisk],
  }).output();
  if (!convert.success) throw new Error("qemu-img convert failed");
  for (const f of [image.boot.kernel, image.boot.initrd]) {
    await Deno.copyFile(join(DEMO, f), join(plainDir, f));
  }
  const bytes = await Deno.readFile(plainDisk);
  await Deno.writeTextFile(
    join(plainDir, "image.json"),
    JSON.stringify({ ...image, size: bytes.length, sha256: sha256(bytes) }),
  );
  console.log(`uncompressed qcow2: ${(bytes.length / 2 ** 20).toFixed(0)} MiB`);
  const uncompressed = { group: "publish an uncompressed qcow2 of the demo", n: 3, warmup: 1 };
  Deno.bench(
    "zstd -3 -q -c | sha256sum (uncompressed qcow2)",
    { ...uncompressed, baseline: true },
    zstdPeer(plainDisk),
  );
  for (const level of [1, 3, 9]) {
    Deno.bench(
      `emu image publish, zstd level ${level} (uncompressed qcow2)`,
      uncompressed,
      async () => {
        await publish(plainDir, level);
      },
    );
  }

  // The releases to pull, served by a separate process: as published by default (this
  // already-compressed qcow2 ships as it is) and forced through zstd level 3.
  const port = 29000 + Math.floor(Math.random() * 1000);
  for (const [name, level] of [["plain", undefined], ["zst", 3]] as const) {
    await publishImage({
      imageDir: DEMO,
      out: join(dir, name),
      key,
      version: "0.1.0",
      level,
      baseUrl: `http://127.0.0.1:${port}/${name}`,
    });
  }
  const server = await startStaticServer(dir, port);
  globalThis.addEventListener("unload", () => {
    server.kill();
    Deno.removeSync(dir, { recursive: true });
  });
  const profile = async (name: string) => {
    const path = join(dir, `emu-${name}.json`);
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        name: "demo",
        image: {
          source: `http://127.0.0.1:${port}/${name}/manifest.json`,
          public_key: key.publicKeyPem,
        },
      }),
    );
    return path;
  };
  const profiles = { plain: await profile("plain"), zst: await profile("zst") };
  const base = `http://127.0.0.1:${port}`;
  const pull = { group: "pull the published demo release over loopback", n: 3, warmup: 1 };
  const shell = (script: string) => async () => {
    const file = join(dir, "shell.qcow2");
    const r = await new Deno.Command("sh", {
      args: ["-c", `${script.replaceAll("FILE", file)} && sync ${file}`],
    }).output();
    if (!r.success) throw new Error(`${script} failed`);
  };
  Deno.bench(
    "curl .qcow2.zst | zstd -d | tee FILE | sha256sum; sync FILE",
    { ...pull, baseline: true },
    shell(`curl -s ${base}/zst/demo-amd64.qcow2.zst | zstd -dc | tee FILE | sha256sum >/dev/null`),
  );
  Deno.bench(
    "curl .qcow2 | tee FILE | sha256sum; sync FILE",
    pull,
    shell(`curl -s ${base}/plain/demo-amd64.qcow2 | tee FILE | sha256sum >/dev/null`),
  );
  for (const name of ["plain", "zst"] as const) {
    Deno.bench(
      `emu pull --skip-snapshot, ${name} release (fresh home, own process)`,
      pull,
      async () => {
        const home = join(dir, `home-${run++}`);
        const r = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--config",
            CONFIG,
            MAIN,
            "--config",
            profiles[name],
            "pull",
            "--skip-snapshot",
            "-q",
          ],
          env: { EMU_HOME: home },
          stderr: "inherit",
        }).output();
        if (!r.success) throw new Error("emu pull failed");
        await Deno.remove(home, { recursive: true });
      },
    );
  }
}
