/**
 * Every cloud-config this repository ships (cloud-init/, fixtures/) passes cloud-init's
 * own schema check, run by the real `cloud-init schema` from Debian's package.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkCloudConfig } from "../../src/image/cloud_config_schema.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function cloudConfigs(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory && e.name !== "out") found.push(...await cloudConfigs(path));
    else if (e.isFile && (await Deno.readTextFile(path)).startsWith("#cloud-config")) {
      found.push(path);
    }
  }
  return found.sort();
}

Deno.test(
  "cloud-config: every one in cloud-init/ and fixtures/ passes cloud-init's schema",
  needs(TOOLS.cloudInit),
  async () => {
    if (!await requireTool("cloud-init", "cloud-init")) return;
    const files = [
      ...await cloudConfigs(join(ROOT, "cloud-init")),
      ...await cloudConfigs(join(ROOT, "fixtures")),
    ];
    assert.ok(files.some((f) => f.endsWith("cloud-init/demo/user-data")), files.join());
    for (const file of files) {
      const result = await checkCloudConfig(file, await Deno.readFile(file));
      assert.deepEqual(result, { status: "valid" }, file);
    }
  },
);

Deno.test(
  "cloud-config: a schema error is reported by its key",
  needs(TOOLS.cloudInit),
  async () => {
    if (!await requireTool("cloud-init", "cloud-init")) return;
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "user-data");
      const text = "#cloud-config\nssh_genkeytypes: []\npackages: 7\n";
      await Deno.writeTextFile(file, text);
      const result = await checkCloudConfig(file, new TextEncoder().encode(text));
      assert.equal(result.status, "invalid");
      assert.ok(
        result.status === "invalid" &&
          result.errors.includes("ssh_genkeytypes: [] is too short"),
        JSON.stringify(result),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "demo scripts: every /bin/sh one passes shellcheck as POSIX sh (the guest runs them with dash)",
  needs(TOOLS.shellcheck),
  async () => {
    if (!await requireTool("shellcheck", "shellcheck")) return;
    const dir = join(ROOT, "cloud-init", "demo");
    const scripts: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isFile && (await Deno.readTextFile(path)).startsWith("#!/bin/sh\n")) scripts.push(path);
    }
    // emu-rotate runs at every start: dash, not bash (BENCHMARKS.md, issue 17).
    assert.ok(scripts.some((f) => f.endsWith("/emu-rotate")), scripts.join());
    for (const script of scripts.sort()) {
      const out = await new Deno.Command("shellcheck", { args: ["-s", "sh", script] }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stdout));
    }
  },
);
