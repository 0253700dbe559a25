/**
 * Where emu keeps things: the home directory layout and the short runtime directory for
 * unix sockets (docs/architecture.md, «On-disk layout»). Pure functions of their inputs; nothing
 * here touches the disk.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { isAbsolute, join, resolve } from "node:path";
import { EmuError } from "../errors.ts";
import { HOME_FILES, INSTANCE_FILES } from "./filenames.ts";

/**
 * Longest unix socket path, in bytes, that every supported OS accepts.
 *
 * `sockaddr_un.sun_path` is 108 bytes on Linux and 104 on macOS, and the path must be
 * NUL-terminated, so 103 bytes is the portable limit.
 */
export const MAX_SOCKET_PATH_BYTES = 103;

/** The environment variables path resolution reads. */
export interface PathEnv {
  EMU_HOME?: string;
  EMU_RUNTIME_DIR?: string;
  XDG_RUNTIME_DIR?: string;
  HOME?: string;
  USERPROFILE?: string;
}

/** Inputs of {@linkcode resolveHome}. */
export interface HomeInputs {
  /** Value of `--home`, if given. Wins over everything. */
  flag?: string;
  env: PathEnv;
  /** Directory relative paths are resolved against. */
  cwd: string;
}

/**
 * The emu home: `--home`, else `EMU_HOME`, else `~/.emu`. Always absolute, because
 * paths under it are handed to QEMU, which changes directory when it daemonizes.
 *
 * @example
 * ```ts
 * import { resolveHome } from "./paths.ts";
 * const home = resolveHome({ env: { HOME: "/home/ada" }, cwd: "/work" });
 * if (home !== "/home/ada/.emu") throw new Error(home);
 * ```
 */
export function resolveHome(inputs: HomeInputs): string {
  const explicit = nonEmpty(inputs.flag) ?? nonEmpty(inputs.env.EMU_HOME);
  if (explicit !== undefined) return resolve(inputs.cwd, expandTilde(explicit, inputs.env));
  const userHome = nonEmpty(inputs.env.HOME) ?? nonEmpty(inputs.env.USERPROFILE);
  if (userHome === undefined) {
    throw new EmuError("home_unusable", "Cannot find the emu home: HOME is not set", {
      hint: "Set EMU_HOME or pass --home DIR.",
    });
  }
  return join(resolve(inputs.cwd, userHome), ".emu");
}

/** Inputs of {@linkcode resolveRuntimeDir}. */
export interface RuntimeDirInputs {
  env: PathEnv;
  /** Numeric user id, or null where the OS has none (Windows). */
  uid: number | null;
  /** The OS temp directory, used only when there is no uid. */
  tmpDir: string;
}

/**
 * The short directory for QMP/QGA sockets: `EMU_RUNTIME_DIR`, else
 * `$XDG_RUNTIME_DIR/emu`, else `/tmp/emu-<uid>`. Kept short on purpose: socket paths
 * must fit {@linkcode MAX_SOCKET_PATH_BYTES}, and a home under a deep directory would not.
 *
 * @example
 * ```ts
 * import { resolveRuntimeDir } from "./paths.ts";
 * const dir = resolveRuntimeDir({ env: {}, uid: 1000, tmpDir: "/tmp" });
 * if (dir !== "/tmp/emu-1000") throw new Error(dir);
 * ```
 */
export function resolveRuntimeDir(inputs: RuntimeDirInputs): string {
  const override = nonEmpty(inputs.env.EMU_RUNTIME_DIR);
  if (override !== undefined) {
    if (!isAbsolute(override)) {
      throw new EmuError(
        "runtime_dir_unusable",
        `Cannot use EMU_RUNTIME_DIR: "${override}" is not an absolute path`,
        { hint: "Set EMU_RUNTIME_DIR to an absolute path such as /tmp/emu-sockets." },
      );
    }
    return override;
  }
  const xdg = nonEmpty(inputs.env.XDG_RUNTIME_DIR);
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, "emu");
  if (inputs.uid === null) return join(inputs.tmpDir, "emu");
  return `/tmp/emu-${inputs.uid}`;
}

/** Every path of the home layout (docs/architecture.md, «On-disk layout»). */
export interface HomeLayout {
  home: string;
  images: string;
  snapshots: string;
  instances: string;
  downloads: string;
  probe: string;
  /** Per release source, the newest release seen (rollback protection). */
  releases: string;
}

/** The home layout under `home` (docs/architecture.md, «On-disk layout»). */
export function homeLayout(home: string): HomeLayout {
  return {
    home,
    images: join(home, HOME_FILES.images),
    snapshots: join(home, HOME_FILES.snapshots),
    instances: join(home, HOME_FILES.instances),
    downloads: join(home, HOME_FILES.downloads),
    probe: join(home, HOME_FILES.probe),
    releases: join(home, HOME_FILES.releasesSeen),
  };
}

const INSTANCE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * Checks an instance name: 1–32 characters, lowercase letters, digits, `-` and `_`,
 * starting with a letter or digit. It becomes a directory and a socket name.
 */
export function validateInstanceName(name: string): string {
  if (!INSTANCE_NAME.test(name)) {
    throw new EmuError("usage", `Cannot use instance name "${name}"`, {
      hint: "Use 1–32 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
    });
  }
  return name;
}

/**
 * Files of one instance (docs/architecture.md, «On-disk layout») plus its sockets in the
 * runtime directory.
 */
export interface InstancePaths {
  dir: string;
  runDisk: string;
  serialLog: string;
  runtimeIso: string;
  record: string;
  /** Secrets saved on request (`emu start --save-secrets`), mode 0600. */
  secretsFile: string;
  lock: string;
  pidFile: string;
  qmpSocket: string;
  qgaSocket: string;
}

/**
 * A short tag of the emu home (8 hex digits of the sha256 of its path) that prefixes its
 * socket names: one runtime directory serves every home of the user, and two homes with
 * an instance of the same name must never share a socket.
 *
 * @example
 * ```ts
 * import { homeTag } from "./paths.ts";
 * if (homeTag("/home/ada/.emu") === homeTag("/srv/emu")) throw new Error("homes collide");
 * if (!/^[0-9a-f]{8}$/.test(homeTag("/srv/emu"))) throw new Error();
 * ```
 */
export function homeTag(home: string): string {
  return createHash("sha256").update(home).digest("hex").slice(0, 8);
}

/**
 * Paths of instance `name`. Throws `socket_path_too_long` when a socket would not fit,
 * naming the path and the way out, rather than letting QEMU fail later.
 */
export function instancePaths(home: string, runtimeDir: string, name: string): InstancePaths {
  validateInstanceName(name);
  const dir = join(homeLayout(home).instances, name);
  const qmpSocket = join(runtimeDir, `${homeTag(home)}-${name}.qmp`);
  const qgaSocket = join(runtimeDir, `${homeTag(home)}-${name}.qga`);
  checkSocketPath(qmpSocket);
  checkSocketPath(qgaSocket);
  return {
    dir,
    runDisk: join(dir, INSTANCE_FILES.runDisk),
    serialLog: join(dir, INSTANCE_FILES.serialLog),
    runtimeIso: join(dir, INSTANCE_FILES.runtimeIso),
    record: join(dir, INSTANCE_FILES.record),
    secretsFile: join(dir, INSTANCE_FILES.secrets),
    lock: join(dir, INSTANCE_FILES.lock),
    pidFile: join(dir, INSTANCE_FILES.pid),
    qmpSocket,
    qgaSocket,
  };
}

/** Throws `socket_path_too_long` when `path` exceeds {@linkcode MAX_SOCKET_PATH_BYTES}. */
export function checkSocketPath(path: string): void {
  const bytes = new TextEncoder().encode(path).length;
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new EmuError(
      "socket_path_too_long",
      `Cannot use socket path ${path}: it is ${bytes} bytes, the limit is ${MAX_SOCKET_PATH_BYTES}`,
      { hint: "Set EMU_RUNTIME_DIR to a short directory such as /tmp/emu-sockets." },
    );
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function expandTilde(path: string, env: PathEnv): string {
  if (path !== "~" && !path.startsWith("~/")) return path;
  const userHome = nonEmpty(env.HOME) ?? nonEmpty(env.USERPROFILE);
  return userHome === undefined ? path : join(userHome, path.slice(1));
}
