/** The accelerator test guests, run by real QEMU under TCG for both architectures. */
import assert from "node:assert/strict";
import { runAccelCanary } from "../../src/qemu/accel_canary.ts";
import { needs, requireTool, TOOLS } from "../_helpers/require.ts";

for (
  const [arch, binary, pkg, cpu] of [
    ["x86_64", "qemu-system-x86_64", "qemu-system-x86", "max"],
    ["aarch64", "qemu-system-aarch64", "qemu-system-arm", "neoverse-n1"],
  ] as const
) {
  Deno.test(`test guest: ${arch} runs to its exit code under TCG`, async () => {
    if (!await requireTool(binary, `${pkg} (bookworm-backports)`)) return;
    const dir = await Deno.makeTempDir();
    try {
      const outcome = await runAccelCanary(binary, arch, "tcg", cpu, {
        workDir: dir,
        deadlineMs: 20_000,
      });
      assert.ok(outcome.ok, JSON.stringify(outcome));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test(
  "test guest: a QEMU error is the rejection reason, with QEMU's message",
  needs(TOOLS.qemu),
  async () => {
    if (!await requireTool("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)")) return;
    const dir = await Deno.makeTempDir();
    try {
      const outcome = await runAccelCanary("qemu-system-x86_64", "x86_64", "tcg", "no-such-cpu", {
        workDir: dir,
      });
      assert.equal(outcome.ok, false);
      assert.match(
        (outcome as { reason: string }).reason,
        /^QEMU exited 1 running the test guest under tcg: .*no-such-cpu/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
