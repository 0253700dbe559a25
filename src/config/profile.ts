/**
 * The `emu.json` profile (docs/profile.md): one declaration ({@linkcode ProfileSchema}, in
 * valibot) gives its type, its validation and its JSON Schema (`docs/emu.schema.json`, which
 * a profile may name in `"$schema"` so editors complete and check it). Validation reports
 * every problem in one run, each naming its field (`ports.api.host`, `health[0].status`),
 * in the words the rest of emu uses. Pure.
 *
 * @module
 */
import * as v from "valibot";
import { closest, describe } from "./_fields.ts";

/** Names emu itself sets in the rotate input; a profile may not shadow them. */
const RESERVED_ENV = /^EMU_/;
/**
 * Names that change how programs run when they arrive in an environment (`emu run` hands
 * secrets to the child as variables; the rotate command reads them): a profile may not
 * use them for a secret or a run-time value.
 */
const DANGEROUS_ENV = new Set([
  "PATH",
  "HOME",
  "SHELL",
  "IFS",
  "ENV",
  "BASH_ENV",
  "CDPATH",
  "PS4",
  "NODE_OPTIONS",
  "PYTHONPATH",
  "PYTHONSTARTUP",
  "PERL5LIB",
  "PERL5OPT",
  "RUBYLIB",
  "RUBYOPT",
  "JAVA_TOOL_OPTIONS",
  "GIT_SSH_COMMAND",
]);
const DANGEROUS_PREFIX = /^(LD_|DYLD_|DENO_)/;
const SECRET_KIND = /^(hex|base64url)(\d+)$/;

/** Defaults for fields a profile may leave out. */
export const PROFILE_DEFAULTS = {
  version: "latest",
  memory_mib: 1024,
  cpus: 2,
  healthStatus: 200,
  rotateTimeoutS: 30,
} as const;

// Messages ---------------------------------------------------------------------------

const UNKNOWN = "\u0000unknown:";

type Issue = v.BaseIssue<unknown>;

function required(i: Issue): string | undefined {
  return i.input === undefined ? "is required" : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON object (not an array, not null). */
function plainObject() {
  return v.custom<Record<string, unknown>>(
    isPlainObject,
    (i: Issue) => `must be an object, got ${describe(i.input)}`,
  );
}

/**
 * An object with exactly these fields; unknown ones are refused with the closest name, and
 * a missing required field is named.
 */
function object<T extends v.ObjectEntries>(entries: T) {
  const allowed = Object.keys(entries).filter((k) => k !== "$schema");
  return v.pipe(
    plainObject(),
    v.strictObject(
      entries,
      (i: Issue) => i.expected === "never" ? `${UNKNOWN}${JSON.stringify(allowed)}` : "is required",
    ),
  );
}

/** A non-empty string, optionally matching `pattern` (explained by `rule`). */
function text(pattern?: RegExp, rule?: string) {
  const base = v.string((i: Issue) => required(i) ?? `must be a string, got ${describe(i.input)}`);
  const nonEmpty = v.minLength<string, 1, string>(1, "must not be empty");
  return pattern === undefined ? v.pipe(base, nonEmpty) : v.pipe(
    base,
    nonEmpty,
    v.regex(pattern, (i: Issue) => `${rule ?? `must match ${pattern}`}, got ${describe(i.input)}`),
  );
}

/** An integer in `[min, max]`, with one message for every way to miss it. */
function integer(min: number, max: number, what = `an integer from ${min} to ${max}`) {
  const message = (i: Issue) => required(i) ?? `must be ${what}, got ${describe(i.input)}`;
  return v.pipe(
    v.number(message),
    v.integer(message),
    v.minValue(min, message),
    v.maxValue(max, message),
  );
}

const port = () => integer(1, 65535, "a TCP port (an integer from 1 to 65535)");

function envName(value: string): string | null {
  if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(value)) {
    return "names must be uppercase letters, digits or '_', starting with a letter";
  }
  if (RESERVED_ENV.test(value)) return "names starting with EMU_ are reserved for emu";
  if (DANGEROUS_ENV.has(value) || DANGEROUS_PREFIX.test(value)) {
    return `${value} changes how programs run (emu run passes secrets and values as environment variables); pick another name`;
  }
  return null;
}

/**
 * A JSON object of `value`s. Its keys are checked by {@linkcode keyProblems} on the raw
 * input: a record drops keys such as `constructor` before any check of it could see them.
 */
function map<V extends v.GenericSchema>(value: V) {
  return v.pipe(plainObject(), v.record(v.string(), value));
}

function portName(name: string): string | null {
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(name)) {
    return "port names must be 1–32 lowercase letters, digits or '_', starting with a letter";
  }
  if (["constructor", "prototype"].includes(name)) {
    return `"${name}" is reserved (JavaScript objects have it); pick another port name`;
  }
  return null;
}

// The declaration --------------------------------------------------------------------

const ImageSchema = object({
  source: v.pipe(
    text(),
    v.description(
      "Manifest URL or path, qcow2 path or URL (.zst allowed), image directory, or github:OWNER/REPO[#TAGPREFIX]; relative paths are relative to the profile file",
    ),
  ),
  version: v.optional(
    v.pipe(
      text(
        /^(latest|v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?)$/,
        'must be "latest" or a version such as 1.4.0',
      ),
      v.description("Release to use; latest means the manifest's latest_stable"),
    ),
    PROFILE_DEFAULTS.version,
  ),
  public_key: v.optional(
    v.pipe(
      text(
        /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/,
        "must be a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)",
      ),
      v.description(
        "PEM ECDSA P-256 key that signs the manifest and SHA256SUMS (default: the key compiled into emu)",
      ),
    ),
  ),
});

const VmSchema = object({
  memory_mib: v.optional(
    v.pipe(integer(128, 1024 * 1024), v.description("Guest RAM in MiB")),
    PROFILE_DEFAULTS.memory_mib,
  ),
  cpus: v.optional(v.pipe(integer(1, 64), v.description("Guest vCPUs")), PROFILE_DEFAULTS.cpus),
});

const PortSchema = object({
  guest: v.pipe(port(), v.description("Port the service listens on in the guest")),
  host: v.pipe(port(), v.description("Port on 127.0.0.1 of this machine")),
  scheme: v.optional(
    v.pipe(
      text(/^[a-z][a-z0-9+.-]{0,31}$/, 'must be a URL scheme such as "http" or "postgres"'),
      v.description("URL scheme printed and passed to emu run (http, postgres, …)"),
    ),
    "http",
  ),
});

const HealthSchema = object({
  name: text(),
  port: v.pipe(text(), v.description("A name in ports")),
  path: text(/^\/[\x21-\x7e]*$/, "must be a URL path starting with /"),
  status: v.optional(integer(100, 599), PROFILE_DEFAULTS.healthStatus),
});

const SecretSchema = v.pipe(
  text(SECRET_KIND, 'must be a kind such as "hex32" or "base64url32"'),
  v.check((kind) => {
    const bytes = Number(SECRET_KIND.exec(kind)![2]);
    return bytes >= 8 && bytes <= 256;
  }, (i: Issue) => `must use 8 to 256 random bytes, got ${SECRET_KIND.exec(String(i.input))?.[2]}`),
  v.description("hexN: N random bytes as hex; base64urlN: N random bytes, base64url; N 8–256"),
);

const RotateSchema = object({
  command: v.pipe(
    text(/^\/\S+$/, "must be an absolute path in the guest"),
    v.description("Guest command that reads KEY=VALUE lines on stdin, applies them and exits 0"),
  ),
  timeout_s: v.optional(integer(1, 3600), PROFILE_DEFAULTS.rotateTimeoutS),
});

const RuntimeValueSchema = v.pipe(
  v.string("must be a string without line breaks"),
  v.regex(/^[^\r\n\0]*$/, "must be a string without line breaks"),
);

/** The profile, declared once: type, validation and JSON Schema come from here. */
export const ProfileSchema = v.pipe(
  object({
    $schema: v.optional(
      v.pipe(v.string(), v.description("The JSON Schema of emu.json, for editors")),
    ),
    name: text(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1–63 lowercase letters, digits or '-'"),
    image: ImageSchema,
    vm: v.optional(VmSchema, {}),
    ports: v.optional(
      v.pipe(
        map(PortSchema),
        v.description("Port forwards by name: 127.0.0.1:host → guest"),
      ),
      {},
    ),
    health: v.optional(
      v.pipe(
        v.array(HealthSchema, (i: Issue) => `must be an array, got ${describe(i.input)}`),
        v.description("HTTP checks that must pass before the stack is healthy"),
      ),
      [],
    ),
    secrets: v.optional(
      v.pipe(
        map(SecretSchema),
        v.description("Secrets generated at every start, by the name the guest and emu run see"),
      ),
      {},
    ),
    rotate: v.optional(RotateSchema),
    runtime: v.optional(
      v.pipe(
        map(RuntimeValueSchema),
        v.description("Run-time values handed to the guest with the secrets"),
      ),
      {},
    ),
  }),
  v.description("An emu profile: one stack, its image, VM, ports, health checks and secrets"),
);

/** How a secret is generated: `hexN` or `base64urlN` (N random bytes from the CSPRNG). */
export type SecretKind = `hex${number}` | `base64url${number}`;

/** A validated profile with every default filled in. */
export type Profile = Omit<v.InferOutput<typeof ProfileSchema>, "$schema" | "secrets"> & {
  secrets: Record<string, SecretKind>;
};
/** Where the stack image comes from. */
export type ImageSpec = Profile["image"];
/** One port forward. */
export type PortForward = Profile["ports"][string];
/** One HTTP health check against a forwarded port. */
export type HealthCheck = Profile["health"][number];
/** The guest command that applies fresh secrets. */
export type RotateSpec = NonNullable<Profile["rotate"]>;

// Validation -------------------------------------------------------------------------

/** One problem of a profile, at one field. */
export interface FieldProblem {
  /** Dotted path: `ports.api.host`, `health[0].status`, `(top level)`. */
  field: string;
  problem: string;
}

/** A profile that fails validation: every problem found, in order. */
export class ProfileError extends Error {
  constructor(readonly problems: FieldProblem[]) {
    super(problems.map((p) => `${p.field}: ${p.problem}`).join("; "));
    this.name = "ProfileError";
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "(top level)" : out;
}

function problemsOf(issues: readonly Issue[]): FieldProblem[] {
  return issues.map((issue) => {
    const path = (issue.path ?? []).map((p) => p.key as PropertyKey);
    if (!issue.message.startsWith(UNKNOWN)) {
      return { field: fieldPath(path), problem: issue.message };
    }
    const allowed = JSON.parse(issue.message.slice(UNKNOWN.length)) as string[];
    const near = closest(String(path.at(-1)), allowed);
    return {
      field: fieldPath(path),
      problem: `unknown field${
        near === undefined ? "" : ` (did you mean "${near}"?)`
      }; allowed here: ${allowed.join(", ")}`,
    };
  });
}

/**
 * The checks of names and those that span fields — run on the raw input, so they are
 * reported together with the problems of single fields.
 */
function crossProblems(raw: unknown): FieldProblem[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return [];
  const top = raw as Record<string, unknown>;
  const out: FieldProblem[] = [];
  const isObject = isPlainObject;
  for (
    const [field, check] of [["ports", portName], ["secrets", envName], [
      "runtime",
      envName,
    ]] as const
  ) {
    const entries = top[field];
    if (!isObject(entries)) continue;
    for (const name of Object.keys(entries)) {
      const problem = check(name);
      if (problem !== null) out.push({ field: `${field}.${name}`, problem });
    }
  }
  const ports = isObject(top.ports) ? top.ports : {};
  const hostOwner = new Map<unknown, string>();
  const guestOwner = new Map<unknown, string>();
  for (const [name, forward] of Object.entries(ports)) {
    if (!isObject(forward)) continue;
    for (
      const [side, owner, words] of [
        ["host", hostOwner, "is already used by"],
        ["guest", guestOwner, "is already forwarded by"],
      ] as const
    ) {
      const value = forward[side];
      if (typeof value !== "number") continue;
      const taken = owner.get(value);
      if (taken !== undefined) {
        out.push({
          field: `ports.${name}.${side}`,
          problem: `${side} port ${value} ${words} ${taken}`,
        });
      } else owner.set(value, `ports.${name}.${side}`);
    }
  }
  if (Array.isArray(top.health)) {
    const names = new Set<unknown>();
    top.health.forEach((check, i) => {
      if (!isObject(check)) return;
      if (typeof check.name === "string") {
        if (names.has(check.name)) {
          out.push({
            field: `health[${i}].name`,
            problem: `duplicate health check name "${check.name}"`,
          });
        }
        names.add(check.name);
      }
      if (
        typeof check.port === "string" && check.port !== "" && !Object.hasOwn(ports, check.port)
      ) {
        const known = Object.keys(ports);
        out.push({
          field: `health[${i}].port`,
          problem: `"${check.port}" is not a name in ports (known: ${
            known.length ? known.join(", ") : "none"
          })`,
        });
      }
    });
  }
  const secrets = isObject(top.secrets) ? top.secrets : {};
  if (Object.keys(secrets).length > 0 && top.rotate === undefined) {
    out.push({
      field: "rotate",
      problem: "is required when secrets are set (the guest command that applies them)",
    });
  }
  if (isObject(top.runtime)) {
    for (const name of Object.keys(top.runtime)) {
      if (Object.hasOwn(secrets, name)) {
        out.push({
          field: `runtime.${name}`,
          problem: `is also a secret: the guest would get two values for ${name}`,
        });
      }
    }
  }
  return out;
}

/**
 * Validates parsed `emu.json` content.
 *
 * @throws {ProfileError} listing every problem, each naming its field.
 * @example
 * ```ts
 * import { validateProfile } from "./profile.ts";
 * const p = validateProfile({ name: "x", image: { source: "./image" } });
 * if (p.vm.cpus !== 2 || p.image.version !== "latest") throw new Error("defaults");
 * ```
 */
export function validateProfile(raw: unknown): Profile {
  const parsed = v.safeParse(ProfileSchema, raw, { abortPipeEarly: true });
  const problems = [
    ...(parsed.success ? [] : problemsOf(parsed.issues)),
    ...crossProblems(raw),
  ];
  if (problems.length > 0 || !parsed.success) throw new ProfileError(problems);
  const { $schema: _, ...profile } = parsed.output;
  return profile as Profile;
}
