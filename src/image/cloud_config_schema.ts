/**
 * Checking cloud-config user-data with cloud-init's own schema (`cloud-init schema
 * --config-file`), when cloud-init is installed on the host: a misspelled key or a wrong
 * type is found before a provisioning boot that would ignore it. Running the check and
 * reading its output are separate; the reading is pure.
 *
 * @module
 */
import { runProgram } from "../process.ts";

/** What the check found. */
export type SchemaCheck =
  | { status: "valid" }
  | { status: "invalid"; errors: string[] }
  /** cloud-init is not installed here, or the user-data is not `#cloud-config`. */
  | { status: "skipped"; reason: string };

/**
 * The errors in `cloud-init schema` output (one per line, as cloud-init prints them
 * after "Cloud config schema errors:", separated by ", ").
 *
 * @example
 * ```ts
 * import { schemaErrors } from "./cloud_config_schema.ts";
 * const out = "Error:\nCloud config schema errors: ssh_genkeytypes: [] is too short, runcmd.0: 1 is not valid\n";
 * const errors = schemaErrors(out);
 * if (errors.length !== 2 || errors[0] !== "ssh_genkeytypes: [] is too short") throw new Error();
 * ```
 */
export function schemaErrors(output: string): string[] {
  const m = /Cloud config schema errors: (.*)/.exec(output);
  if (!m) return output.trim() === "" ? [] : [output.trim().split("\n").pop()!];
  // Errors are "<path>: <message>", joined by ", "; split only before a "<path>: ".
  return m[1].trim().split(/, (?=[\w.\-\[\]]+: )/).map((e) => e.trim()).filter(Boolean);
}

/** Runs `cloud-init schema --config-file` on `userDataPath` (cloud-config only). */
export async function checkCloudConfig(
  userDataPath: string,
  userData: Uint8Array,
): Promise<SchemaCheck> {
  if (!new TextDecoder().decode(userData.subarray(0, 64)).startsWith("#cloud-config")) {
    return { status: "skipped", reason: "the user-data is not #cloud-config" };
  }
  const r = await runProgram("cloud-init", ["schema", "--config-file", userDataPath]);
  if (r.spawnError !== undefined) {
    return { status: "skipped", reason: "cloud-init is not installed on this host" };
  }
  if (r.ok) return { status: "valid" };
  const text = r.stdout + r.stderr;
  return { status: "invalid", errors: schemaErrors(text) };
}
