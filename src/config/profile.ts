/**
 * The `emu.json` profile (docs/profile.md): its types and its validation. Pure: takes the
 * parsed JSON and returns a typed {@linkcode Profile} with defaults filled in, or throws
 * a {@linkcode FieldError} naming the first bad field.
 *
 * @module
 */
import {
  array,
  FieldError,
  fieldPath,
  integer,
  type JsonObject,
  object,
  objectWithKeys,
  port,
  string,
} from "./_fields.ts";

/** Where the stack image comes from. */
export interface ImageSpec {
  /** Manifest URL or path, qcow2 path or URL (`.zst` allowed), image directory, or `github:owner/repo`. */
  source: string;
  /** Release to use; `latest` means the manifest's `latest_stable`. */
  version: string;
  /** PEM public key (ECDSA P-256) that signs the release's SHA256SUMS. */
  public_key?: string;
}

/** Guest size. */
export interface VmSpec {
  memory_mib: number;
  cpus: number;
}

/** One port forward: host `127.0.0.1:host` → guest `guest`. */
export interface PortForward {
  guest: number;
  host: number;
  /** The URL scheme emu prints and hands to `emu run` (`http`, `postgres`, …); default `http`. */
  scheme: string;
}

/** One HTTP health check against a forwarded port. */
export interface HealthCheck {
  name: string;
  /** Name of an entry of {@linkcode Profile.ports}. */
  port: string;
  /** Request path, starting with `/`. */
  path: string;
  /** Expected HTTP status. */
  status: number;
}

/**
 * How a secret is generated at every start, from the host CSPRNG: `hexN` gives N
 * random bytes as 2N hex digits (like `openssl rand -hex N`), `base64urlN` gives N
 * random bytes in unpadded base64url. N is from 8 to 256.
 */
export type SecretKind = `hex${number}` | `base64url${number}`;

/** The guest command that applies fresh secrets (reads `KEY=VALUE` lines on stdin). */
export interface RotateSpec {
  /** Absolute path of the command inside the guest. */
  command: string;
  /** How long the command may run, in seconds. */
  timeout_s: number;
}

/** A validated profile with every default filled in. */
export interface Profile {
  name: string;
  image: ImageSpec;
  vm: VmSpec;
  ports: Record<string, PortForward>;
  health: HealthCheck[];
  secrets: Record<string, SecretKind>;
  rotate?: RotateSpec;
  /** Run-time values handed to the guest with the secrets (`KEY=VALUE`). */
  runtime: Record<string, string>;
}

/** Defaults for fields a profile may leave out. */
export const PROFILE_DEFAULTS = {
  version: "latest",
  memory_mib: 1024,
  cpus: 2,
  healthStatus: 200,
  rotateTimeoutS: 30,
} as const;

const TOP_FIELDS = ["name", "image", "vm", "ports", "health", "secrets", "rotate", "runtime"];
const PROFILE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PORT_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const SCHEME = /^[a-z][a-z0-9+.-]{0,31}$/;
const ENV_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const SECRET_KIND = /^(hex|base64url)(\d+)$/;
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

/**
 * Validates parsed `emu.json` content.
 *
 * @throws {FieldError} naming the first bad field and what is wrong with it.
 * @example
 * ```ts
 * import { validateProfile } from "./profile.ts";
 * const p = validateProfile({ name: "x", image: { source: "./image" } });
 * if (p.vm.cpus !== 2 || p.image.version !== "latest") throw new Error("defaults");
 * ```
 */
export function validateProfile(raw: unknown): Profile {
  const top = objectWithKeys(raw, "", TOP_FIELDS);
  const profile: Profile = {
    name: string(
      required(top, "name", ""),
      "name",
      PROFILE_NAME,
      "must be 1–63 lowercase letters, digits or '-'",
    ),
    image: validateImage(required(top, "image", "")),
    vm: validateVm(top.vm),
    ports: validatePorts(top.ports),
    health: [],
    secrets: validateSecrets(top.secrets),
    runtime: validateRuntime(top.runtime),
  };
  for (const name of Object.keys(profile.runtime)) {
    if (Object.hasOwn(profile.secrets, name)) {
      throw new FieldError(
        fieldPath("runtime", name),
        `is also a secret: the guest would get two values for ${name}`,
      );
    }
  }
  profile.health = validateHealth(top.health, profile.ports);
  if (top.rotate !== undefined) profile.rotate = validateRotate(top.rotate);
  if (Object.keys(profile.secrets).length > 0 && profile.rotate === undefined) {
    throw new FieldError(
      "rotate",
      "is required when secrets are set (the guest command that applies them)",
    );
  }
  return profile;
}

function required(obj: JsonObject, key: string, parent: string): unknown {
  if (obj[key] === undefined) throw new FieldError(fieldPath(parent, key), "is required");
  return obj[key];
}

function validateImage(value: unknown): ImageSpec {
  const obj = objectWithKeys(value, "image", ["source", "version", "public_key"]);
  const image: ImageSpec = {
    source: string(required(obj, "source", "image"), "image.source"),
    version: obj.version === undefined ? PROFILE_DEFAULTS.version : string(
      obj.version,
      "image.version",
      /^(latest|v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?)$/,
      'must be "latest" or a version such as 1.4.0',
    ),
  };
  if (obj.public_key !== undefined) {
    image.public_key = string(
      obj.public_key,
      "image.public_key",
      /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/,
      "must be a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----)",
    );
  }
  return image;
}

function validateVm(value: unknown): VmSpec {
  if (value === undefined) {
    return { memory_mib: PROFILE_DEFAULTS.memory_mib, cpus: PROFILE_DEFAULTS.cpus };
  }
  const obj = objectWithKeys(value, "vm", ["memory_mib", "cpus"]);
  return {
    memory_mib: obj.memory_mib === undefined
      ? PROFILE_DEFAULTS.memory_mib
      : integer(obj.memory_mib, "vm.memory_mib", 128, 1024 * 1024),
    cpus: obj.cpus === undefined ? PROFILE_DEFAULTS.cpus : integer(obj.cpus, "vm.cpus", 1, 64),
  };
}

function validatePorts(value: unknown): Record<string, PortForward> {
  if (value === undefined) return {};
  const obj = object(value, "ports");
  const ports: Record<string, PortForward> = {};
  const hostOwner = new Map<number, string>();
  const guestOwner = new Map<number, string>();
  for (const [name, entry] of Object.entries(obj)) {
    const field = fieldPath("ports", name);
    if (!PORT_NAME.test(name)) {
      throw new FieldError(
        field,
        "port names must be 1–32 lowercase letters, digits or '_', starting with a letter",
      );
    }
    const fwd = objectWithKeys(entry, field, ["guest", "host", "scheme"]);
    const forward = {
      guest: port(required(fwd, "guest", field), `${field}.guest`),
      host: port(required(fwd, "host", field), `${field}.host`),
      scheme: fwd.scheme === undefined ? "http" : string(
        fwd.scheme,
        `${field}.scheme`,
        SCHEME,
        'must be a URL scheme such as "http" or "postgres"',
      ),
    };
    const hostTaken = hostOwner.get(forward.host);
    if (hostTaken !== undefined) {
      throw new FieldError(
        `${field}.host`,
        `host port ${forward.host} is already used by ${hostTaken}`,
      );
    }
    const guestTaken = guestOwner.get(forward.guest);
    if (guestTaken !== undefined) {
      throw new FieldError(
        `${field}.guest`,
        `guest port ${forward.guest} is already forwarded by ${guestTaken}`,
      );
    }
    hostOwner.set(forward.host, `${field}.host`);
    guestOwner.set(forward.guest, `${field}.guest`);
    ports[name] = forward;
  }
  return ports;
}

function validateHealth(value: unknown, ports: Record<string, PortForward>): HealthCheck[] {
  if (value === undefined) return [];
  const names = new Set<string>();
  return array(value, "health").map((entry, i) => {
    const field = fieldPath("health", i);
    const obj = objectWithKeys(entry, field, ["name", "port", "path", "status"]);
    const name = string(required(obj, "name", field), `${field}.name`);
    if (names.has(name)) {
      throw new FieldError(`${field}.name`, `duplicate health check name "${name}"`);
    }
    names.add(name);
    const portName = string(required(obj, "port", field), `${field}.port`);
    if (!Object.hasOwn(ports, portName)) {
      const known = Object.keys(ports);
      throw new FieldError(
        `${field}.port`,
        `"${portName}" is not a name in ports (known: ${known.length ? known.join(", ") : "none"})`,
      );
    }
    return {
      name,
      port: portName,
      path: string(
        required(obj, "path", field),
        `${field}.path`,
        /^\/[\x21-\x7e]*$/,
        "must be a URL path starting with /",
      ),
      status: obj.status === undefined
        ? PROFILE_DEFAULTS.healthStatus
        : integer(obj.status, `${field}.status`, 100, 599),
    };
  });
}

function validateSecrets(value: unknown): Record<string, SecretKind> {
  if (value === undefined) return {};
  const obj = object(value, "secrets");
  const secrets: Record<string, SecretKind> = {};
  for (const [name, kind] of Object.entries(obj)) {
    const field = fieldPath("secrets", name);
    checkEnvName(name, field);
    const text = string(
      kind,
      field,
      SECRET_KIND,
      'must be a kind such as "hex32" or "base64url32"',
    );
    const bytes = Number(SECRET_KIND.exec(text)![2]);
    if (bytes < 8 || bytes > 256) {
      throw new FieldError(field, `must use 8 to 256 random bytes, got ${bytes}`);
    }
    secrets[name] = text as SecretKind;
  }
  return secrets;
}

function validateRotate(value: unknown): RotateSpec {
  const obj = objectWithKeys(value, "rotate", ["command", "timeout_s"]);
  return {
    command: string(
      required(obj, "command", "rotate"),
      "rotate.command",
      /^\/\S+$/,
      "must be an absolute path in the guest",
    ),
    timeout_s: obj.timeout_s === undefined
      ? PROFILE_DEFAULTS.rotateTimeoutS
      : integer(obj.timeout_s, "rotate.timeout_s", 1, 3600),
  };
}

function validateRuntime(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  const obj = object(value, "runtime");
  const runtime: Record<string, string> = {};
  for (const [name, text] of Object.entries(obj)) {
    const field = fieldPath("runtime", name);
    checkEnvName(name, field);
    if (typeof text !== "string" || /[\r\n\0]/.test(text)) {
      throw new FieldError(field, "must be a string without line breaks");
    }
    runtime[name] = text;
  }
  return runtime;
}

function checkEnvName(name: string, field: string): void {
  if (!ENV_NAME.test(name)) {
    throw new FieldError(
      field,
      "names must be uppercase letters, digits or '_', starting with a letter",
    );
  }
  if (RESERVED_ENV.test(name)) {
    throw new FieldError(field, "names starting with EMU_ are reserved for emu");
  }
  if (DANGEROUS_ENV.has(name) || DANGEROUS_PREFIX.test(name)) {
    throw new FieldError(
      field,
      `${name} changes how programs run (emu run passes secrets and values as environment variables); pick another name`,
    );
  }
}
