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
  fix = `apt-get install ${debianPackage}`,
  label = name,
): Promise<boolean> {
  if (await hasTool(name, args)) return true;
  const message =
    `${label} is missing (${fix}; \`sudo bash .ci/install-deps\` installs everything)`;
  const strict = Deno.env.get("EMU_TEST_ALLOW_MISSING") !== "1" && Deno.env.get("CI") === "true";
  if (strict) throw new Error(message);
  console.warn(`SKIPPED (tool missing): ${message}`);
  return false;
}

/** A tool a test needs: its command, the Debian package, and args that make it exit 0. */
export interface Tool {
  name: string;
  pkg: string;
  args?: string[];
  /** What to call it in messages, when the command is only a probe (`test -f FILE`). */
  label?: string;
  /** How to get it, when that is not `apt-get install pkg`. */
  fix?: string;
}

/** The tools the tests use. */
export const TOOLS = {
  qemu: { name: "qemu-system-x86_64", pkg: "qemu-system-x86 (bookworm-backports)" },
  qemuImg: { name: "qemu-img", pkg: "qemu-utils (bookworm-backports)" },
  qemuGa: { name: "qemu-ga", pkg: "qemu-guest-agent (bookworm-backports)" },
  apt: { name: "apt-get", pkg: "apt (the fixture guest is built from Debian packages)" },
  zstd: { name: "zstd", pkg: "zstd" },
  openssl: { name: "openssl", pkg: "openssl", args: ["version"] },
  shellcheck: { name: "shellcheck", pkg: "shellcheck" },
  dash: { name: "dash", pkg: "dash", args: ["-c", "true"] },
  fish: { name: "fish", pkg: "fish" },
  zsh: { name: "zsh", pkg: "zsh" },
  ruby: { name: "ruby", pkg: "ruby" },
  sha256sum: { name: "sha256sum", pkg: "coreutils" },
  debootstrap: { name: "debootstrap", pkg: "debootstrap" },
  mkfs: { name: "mkfs.ext4", pkg: "e2fsprogs", args: ["-V"] },
  psql: { name: "psql", pkg: "postgresql-client" },
  isoinfo: { name: "isoinfo", pkg: "genisoimage", args: ["-version"] },
  xorriso: { name: "xorriso", pkg: "xorriso", args: ["-version"] },
  bsdtar: { name: "bsdtar", pkg: "libarchive-tools" },
  cloudInit: { name: "cloud-init", pkg: "cloud-init" },
  qemuArm: { name: "qemu-system-aarch64", pkg: "qemu-system-arm (bookworm-backports)" },
  aavmf: {
    name: "test",
    args: ["-f", "/usr/share/AAVMF/AAVMF_CODE.fd"],
    label: "UEFI firmware for arm64 (/usr/share/AAVMF)",
    pkg: "qemu-efi-aarch64",
  },
  mtools: { name: "mcopy", pkg: "mtools", args: ["-V"] },
  mkfsVfat: { name: "mkfs.vfat", pkg: "dosfstools", args: ["--help"] },
  syslinux: { name: "syslinux", pkg: "syslinux syslinux-common" },
  sfdisk: { name: "sfdisk", pkg: "fdisk" },
  readelf: { name: "readelf", pkg: "binutils" },
  // The arm64 fixtures are built from Debian's arm64 packages: dpkg must know the
  // architecture and apt must have its package lists.
  aptArm64: {
    name: "sh",
    args: ["-c", "apt-cache show --no-all-versions busybox-static:arm64 > /dev/null 2>&1"],
    label: "Debian's arm64 package lists",
    pkg: "(an architecture, not a package)",
    fix: "sudo dpkg --add-architecture arm64 && sudo apt-get update",
  },
} as const satisfies Record<string, Tool>;

/** How to get `tool`, for the messages. */
function fixFor(tool: Tool): string {
  return tool.fix ?? `apt-get install ${tool.pkg}`;
}

const present = new Map<string, boolean>();
const reported = new Set<string>();

function hasToolSync(tool: Tool): boolean {
  const key = [tool.name, ...(tool.args ?? [])].join(" ");
  let found = present.get(key);
  if (found === undefined) {
    try {
      found = new Deno.Command(tool.name, {
        args: tool.args ?? ["--version"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).outputSync().success;
    } catch {
      found = false;
    }
    present.set(key, found);
  }
  return found;
}

/**
 * Test options for a test that needs `tools`: `{ ignore: true }` when one is missing on a
 * development machine, so the test is reported as ignored (with a loud line naming the
 * package), never as passed; in CI (`CI=true`) nothing is ignored, and the test fails on
 * the missing tool (`requireTool` inside it throws).
 */
export function needs(...tools: Tool[]): { ignore: boolean } {
  const missing = tools.filter((t) => !hasToolSync(t));
  const strict = Deno.env.get("EMU_TEST_ALLOW_MISSING") !== "1" && Deno.env.get("CI") === "true";
  if (missing.length === 0 || strict) return { ignore: false };
  for (const t of missing) {
    if (reported.has(t.label ?? t.name)) continue;
    reported.add(t.label ?? t.name);
    console.warn(
      `IGNORED (tool missing): tests that need ${t.label ?? t.name} (${
        fixFor(t)
      }; \`sudo bash .ci/install-deps\` installs everything)`,
    );
  }
  return { ignore: true };
}

/** The tools a whole-VM test with the fast fixture needs. */
export const VM_TOOLS = [TOOLS.qemu, TOOLS.qemuGa, TOOLS.apt];
/** What an arm64 guest needs beyond the x86_64 ones: QEMU for arm64, and readelf for its fixture. */
export const ARM64_TOOLS = [...VM_TOOLS, TOOLS.qemuArm, TOOLS.readelf, TOOLS.aptArm64];
/** What the firmware-bootable fixtures need to be built and booted. */
export const BOOTABLE_TOOLS = [
  ...VM_TOOLS,
  TOOLS.mtools,
  TOOLS.mkfsVfat,
  TOOLS.syslinux,
  TOOLS.sfdisk,
  TOOLS.mkfs,
];

/**
 * In CI, fails unless every tool is there (a test `needs()` did not ignore must not pass
 * silently without them); elsewhere `needs()` already ignored the test.
 */
export async function requireTools(...tools: Tool[]): Promise<void> {
  for (const t of tools) {
    const fix = fixFor(t);
    if (!await requireTool(t.name, t.pkg, t.args, fix, t.label ?? t.name)) {
      throw new Error(`${t.label ?? t.name} is missing (${fix})`);
    }
  }
}

/** The three independent ISO readers. */
export const ISO_READERS = [TOOLS.isoinfo, TOOLS.xorriso, TOOLS.bsdtar];
