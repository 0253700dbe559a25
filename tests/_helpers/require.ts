/**
 * Integration tests need real tools. A missing tool:
 * - in CI (`CI=true`, as .ci/run runs), fails the test with the package to install;
 * - elsewhere (a fresh development machine), or with `EMU_TEST_ALLOW_MISSING=1`, prints a
 *   loud `SKIPPED (tool missing)` line and the test returns early. Never silent.
 */

/** Whether `name` runs (`name --version` or the given probe args exit 0). */
export async function hasTool(name: string, args = ["--version"]): Promise<boolean> {
  try {
    const out = await new Deno.Command(name, {
      args,
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Returns `true` if the tool is present; otherwise fails (CI) or skips loudly (see module doc). */
export async function requireTool(
  name: string,
  debianPackage: string,
  args?: string[],
): Promise<boolean> {
  if (await hasTool(name, args)) return true;
  const message =
    `${name} is not installed (apt-get install ${debianPackage}; \`sudo bash .ci/install-deps\` installs everything)`;
  const strict = Deno.env.get("EMU_TEST_ALLOW_MISSING") !== "1" && Deno.env.get("CI") === "true";
  if (strict) throw new Error(message);
  console.warn(`SKIPPED (tool missing): ${message}`);
  return false;
}
