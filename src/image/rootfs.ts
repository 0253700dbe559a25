/**
 * A base image from Debian packages, for when no Debian cloud image is at hand: debootstrap
 * a minimal root filesystem with the packages a stack needs, make it bootable as an
 * ext4 disk for direct kernel boot, and write an image directory (`image.json`, disk,
 * kernel, initrd) that `emu image build --base DIR` takes. Needs root (debootstrap,
 * chroot) and the `debootstrap`, `mkfs.ext4` and `qemu-img` programs.
 *
 * @module
 */
import { join } from "node:path";
import { IMAGE_JSON } from "../artifact/image_json.ts";
import { sha256File } from "../artifact/cache.ts";
import { EmuError } from "../errors.ts";

/** What to put in the root filesystem. */
export interface RootfsOptions {
  /** Debian suite, e.g. `bookworm`. */
  suite: string;
  mirror: string;
  /** Packages beyond debootstrap's minbase. */
  packages: readonly string[];
  /** Disk size in GiB (sparse: only what is written takes space). */
  diskGib: number;
  /** Where downloaded .debs are kept between builds. */
  debCache?: string;
  onProgress?: (text: string) => void;
}

/**
 * Packages every emu guest needs from a minbase system: init, device manager, D-Bus (for
 * the power button), kernel with its initramfs, and the guest agent. (Virtual dependencies are listed explicitly: the
 * debootstrap resolver does not follow `Provides:`, e.g. python3-cryptography needs
 * python3-cffi-backend.)
 */
export const GUEST_PACKAGES = [
  "systemd-sysv",
  "udev",
  "kmod",
  // systemd-logind needs D-Bus; without it the ACPI power button (emu stop) does nothing.
  "dbus",
  // The generic kernel, not -cloud: it has CONFIG_VMGENID, so a guest resumed from a
  // snapshot sees QEMU's new VM generation ID and reseeds its RNG.
  "linux-image-amd64",
  "qemu-guest-agent",
] as const;

/** Kernel command line of the base: root is the whole first virtio disk (no partitions). */
export const ROOTFS_APPEND = "root=/dev/vda rw console=ttyS0 quiet";

async function run(what: string, cmd: string, args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    throw new EmuError("image_build_input", `Cannot ${what}: ${cmd} is not available`, {
      cause: err,
      hint: "Install debootstrap, e2fsprogs and qemu-utils (Debian: apt-get install …).",
    });
  }
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim() ||
      new TextDecoder().decode(out.stdout).trim();
    throw new EmuError(
      "io",
      `Cannot ${what}: ${cmd} exited ${out.code}: ${text.split("\n").slice(-8).join("\n")}`,
    );
  }
}

/** Files written into the root filesystem before it becomes a disk. */
export function rootfsFiles(hostname: string): Record<string, string> {
  return {
    "etc/hostname": `${hostname}\n`,
    "etc/hosts": `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n`,
    "etc/fstab": "/dev/vda\t/\text4\trw,discard,errors=remount-ro\t0\t1\n",
    // DHCP on the virtio NIC; slirp answers at once, so nothing waits for "online".
    "etc/systemd/network/20-emu.network": "[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n",
    // cloud-init: only the NoCloud seed (and nothing else to probe), no network rendering.
    "etc/cloud/cloud.cfg.d/90-emu.cfg":
      "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\n",
  };
}

/**
 * Builds the base image directory `outDir` (which must not exist yet; a temp directory
 * beside it is renamed into place at the end).
 */
export async function buildRootfsImage(outDir: string, options: RootfsOptions): Promise<void> {
  const progress = options.onProgress ?? (() => {});
  if (Deno.uid() !== 0) {
    throw new EmuError(
      "image_build_input",
      "Cannot debootstrap a base image: not running as root",
      {
        hint: "Run the base build as root (sudo), or give emu image build a Debian cloud image.",
      },
    );
  }
  const temp = `${outDir}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const root = join(temp, "rootfs");
  await Deno.mkdir(temp, { recursive: true });
  try {
    const packages = [...new Set([...GUEST_PACKAGES, ...options.packages])];
    progress(`debootstrap ${options.suite} (minbase + ${packages.length} packages)`);
    const cacheArgs: string[] = [];
    if (options.debCache) {
      await Deno.mkdir(options.debCache, { recursive: true });
      cacheArgs.push(`--cache-dir=${options.debCache}`);
    }
    await run("debootstrap the root filesystem", "debootstrap", [
      "--variant=minbase",
      `--include=${packages.join(",")}`,
      ...cacheArgs,
      options.suite,
      root,
      options.mirror,
    ]);
    progress("configuring the root filesystem");
    for (const [path, text] of Object.entries(rootfsFiles("emu"))) {
      await Deno.mkdir(join(root, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
    }
    await run("enable systemd-networkd", "chroot", [
      root,
      "systemctl",
      "enable",
      "systemd-networkd.service",
    ]);
    await run("mask systemd-networkd-wait-online", "chroot", [
      root,
      "systemctl",
      "mask",
      "systemd-networkd-wait-online.service",
    ]);
    // Every VM of the image gets its own machine id at first boot.
    await Deno.writeTextFile(join(root, "etc/machine-id"), "");
    const boot = join(root, "boot");
    const names = [...Deno.readDirSync(boot)].map((e) => e.name);
    const vmlinuz = names.find((n) => n.startsWith("vmlinuz-"));
    const initrd = names.find((n) => n.startsWith("initrd.img-"));
    if (!vmlinuz || !initrd) {
      throw new EmuError("io", `Cannot find the kernel and initrd in ${boot}: ${names.join(", ")}`);
    }
    await Deno.copyFile(join(boot, vmlinuz), join(temp, "vmlinuz"));
    await Deno.copyFile(join(boot, initrd), join(temp, "initrd.img"));
    // What only the build needed: downloaded .debs and package lists.
    for (const dir of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
      for (const entry of Deno.readDirSync(join(root, dir))) {
        if (entry.isFile) await Deno.remove(join(root, dir, entry.name));
      }
    }
    progress(`making a ${options.diskGib} GiB ext4 disk`);
    const raw = join(temp, "disk.raw");
    await run("make the ext4 disk", "mkfs.ext4", [
      "-q",
      "-F",
      "-L",
      "emu-root",
      "-d",
      root,
      raw,
      `${options.diskGib}G`,
    ]);
    await Deno.remove(root, { recursive: true });
    await run("convert the disk to qcow2", "qemu-img", [
      "convert",
      "-O",
      "qcow2",
      raw,
      join(temp, "disk.qcow2"),
    ]);
    await Deno.remove(raw);
    const disk = join(temp, "disk.qcow2");
    const image = {
      schema_version: 1,
      name: `debian-${options.suite}-base`,
      version: new Date().toISOString().slice(0, 10),
      arch: "x86_64",
      disk: "disk.qcow2",
      sha256: await sha256File(disk),
      size: (await Deno.stat(disk)).size,
      source: `debootstrap --variant=minbase ${options.suite} ${options.mirror}: ${
        packages.join(" ")
      }`,
      boot: { kernel: "vmlinuz", initrd: "initrd.img", append: ROOTFS_APPEND },
    };
    await Deno.writeTextFile(join(temp, IMAGE_JSON), JSON.stringify(image, null, 2) + "\n");
    await Deno.rename(temp, outDir);
  } catch (err) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw err;
  }
}
