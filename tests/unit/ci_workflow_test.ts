/**
 * GitHub's CI gives the same verdict as the CI of record: its Linux job is `.ci/run` in a
 * Debian 12 container as root (nothing installed or run beside it), and the macOS job runs
 * only test files that exist and says what it skips. actionlint checks the syntax
 * (release_tools_test.ts); this checks the shape.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";

const ROOT = new URL("../../", import.meta.url);

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  "runs-on": string;
  "timeout-minutes"?: number;
  container?: { image: string; options?: string };
  env?: Record<string, string>;
  steps: Step[];
}

const workflow = parse(
  await Deno.readTextFile(new URL(".github/workflows/ci.yml", ROOT)),
) as { on: Record<string, unknown>; jobs: Record<string, Job> };

Deno.test("ci.yml: the Linux job is .ci/run in a privileged Debian 12 container, within 90 minutes", () => {
  const linux = workflow.jobs.linux;
  assert.ok(linux, "a linux job");
  assert.match(linux["runs-on"], /^ubuntu-/);
  assert.equal(linux.container?.image, "debian:12");
  assert.match(linux.container?.options ?? "", /(^|\s)--privileged(\s|$)/);
  assert.ok((linux["timeout-minutes"] ?? 360) <= 90, "bounded like the CI of record");
  const runs = linux.steps.filter((s) => s.run !== undefined).map((s) => s.run!.trim());
  assert.equal(runs.at(-1), "bash .ci/run", "the last step is .ci/run itself");
  // Nothing else may change the verdict: no tests, QEMU or Deno installed beside .ci/run.
  for (const run of runs.slice(0, -1)) {
    assert.doesNotMatch(run, /qemu|deno|test/i, `a step beside .ci/run: ${run}`);
  }
  assert.deepEqual(
    linux.steps.filter((s) => s.uses).map((s) => s.uses),
    ["actions/checkout@v4", "actions/setup-node@v4"],
  );
  assert.ok("pull_request" in workflow.on && "push" in workflow.on);
});

Deno.test("ci.yml: the macOS job runs test files that exist, checks doctor --json and says what it skips", async () => {
  const macos = workflow.jobs.macos;
  assert.ok(macos, "a macos job");
  assert.match(macos["runs-on"], /^macos-/);
  assert.equal(macos.env?.EMU_TEST_ALLOW_MISSING, "1", "missing tools are ignored, not failed");
  const test = macos.steps.find((s) => s.run?.includes("test --allow-all"));
  assert.ok(test, "a test step");
  const paths = test.run!.split(/\s+/).filter((w) => /^(src|tests)\//.test(w));
  assert.ok(paths.length >= 5, `test paths: ${paths}`);
  for (const path of paths) {
    await Deno.stat(new URL(path, ROOT)).catch(() => assert.fail(`${path} does not exist`));
  }
  assert.ok(macos.steps.some((s) => /doctor --json/.test(s.run ?? "")), "doctor --json step");
  assert.ok(macos.steps.some((s) => /skip/i.test(s.name ?? "")), "a step that says what it skips");
});
