/**
 * Integration tests need real tools. A missing tool fails the test loudly with the
 * install command, unless EMU_TEST_ALLOW_MISSING=1 turns it into a visible skip.
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

/**
 * Returns `true` if the tool is present. Otherwise throws (so the test fails) with the
 * Debian package to install, or — with EMU_TEST_ALLOW_MISSING=1 — prints a loud skip
 * line and returns `false`.
 */
export async function requireTool(
  name: string,
  debianPackage: string,
  args?: string[],
): Promise<boolean> {
  if (await hasTool(name, args)) return true;
  const message =
    `${name} is not installed (apt-get install ${debianPackage}); .ci/run installs it`;
  if (Deno.env.get("EMU_TEST_ALLOW_MISSING") === "1") {
    console.warn(`SKIPPED (tool missing): ${message}`);
    return false;
  }
  throw new Error(message);
}
