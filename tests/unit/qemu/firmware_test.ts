/**
 * Firmware discovery against fake trees, one per packaging (src/qemu/firmware.ts): each
 * tree holds only that layout's files, under a temporary root, and the real lookup
 * (stat calls under `root`) must find exactly them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  aarch64FirmwareCandidates,
  bootFirmware,
  findAarch64Firmware,
  firmwareInstallHint,
  firmwareMissing,
  hostKind,
  osReleaseIds,
} from "../../../src/qemu/firmware.ts";

/** Each packaging: its QEMU binary (relative to the root), files, and what must be found. */
const LAYOUTS: {
  name: string;
  qemu: string;
  files: string[];
  code: string;
  vars: string | null;
  kind: "pflash" | "bios";
}[] = [
  {
    name: "Homebrew (Apple silicon)",
    qemu: "opt/homebrew/bin/qemu-system-aarch64",
    files: [
      "opt/homebrew/share/qemu/edk2-aarch64-code.fd",
      "opt/homebrew/share/qemu/edk2-arm-vars.fd",
    ],
    code: "opt/homebrew/share/qemu/edk2-aarch64-code.fd",
    vars: "opt/homebrew/share/qemu/edk2-arm-vars.fd",
    kind: "pflash",
  },
  {
    name: "Homebrew (Intel), QEMU elsewhere on PATH",
    qemu: "opt/qemu-git/bin/qemu-system-aarch64",
    files: ["usr/local/share/qemu/edk2-aarch64-code.fd", "usr/local/share/qemu/edk2-arm-vars.fd"],
    code: "usr/local/share/qemu/edk2-aarch64-code.fd",
    vars: "usr/local/share/qemu/edk2-arm-vars.fd",
    kind: "pflash",
  },
  {
    name: "QEMU built from source (its own share/qemu)",
    qemu: "home/ada/qemu/bin/qemu-system-aarch64",
    files: [
      "home/ada/qemu/share/qemu/edk2-aarch64-code.fd",
      "home/ada/qemu/share/qemu/edk2-arm-vars.fd",
    ],
    code: "home/ada/qemu/share/qemu/edk2-aarch64-code.fd",
    vars: "home/ada/qemu/share/qemu/edk2-arm-vars.fd",
    kind: "pflash",
  },
  {
    name: "Debian/Ubuntu qemu-efi-aarch64",
    qemu: "usr/bin/qemu-system-aarch64",
    files: [
      "usr/share/AAVMF/AAVMF_CODE.fd",
      "usr/share/AAVMF/AAVMF_VARS.fd",
      "usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
    ],
    code: "usr/share/AAVMF/AAVMF_CODE.fd",
    vars: "usr/share/AAVMF/AAVMF_VARS.fd",
    kind: "pflash",
  },
  {
    name: "Fedora edk2-aarch64",
    qemu: "usr/bin/qemu-system-aarch64",
    files: [
      "usr/share/edk2/aarch64/QEMU_EFI-pflash.raw",
      "usr/share/edk2/aarch64/vars-template-pflash.raw",
    ],
    code: "usr/share/edk2/aarch64/QEMU_EFI-pflash.raw",
    vars: "usr/share/edk2/aarch64/vars-template-pflash.raw",
    kind: "pflash",
  },
  {
    name: "Arch edk2-aarch64",
    qemu: "usr/bin/qemu-system-aarch64",
    files: ["usr/share/edk2/aarch64/QEMU_CODE.fd", "usr/share/edk2/aarch64/QEMU_VARS.fd"],
    code: "usr/share/edk2/aarch64/QEMU_CODE.fd",
    vars: "usr/share/edk2/aarch64/QEMU_VARS.fd",
    kind: "pflash",
  },
  {
    name: "Arch edk2-armvirt (older)",
    qemu: "usr/bin/qemu-system-aarch64",
    files: [
      "usr/share/edk2-armvirt/aarch64/QEMU_CODE.fd",
      "usr/share/edk2-armvirt/aarch64/QEMU_VARS.fd",
    ],
    code: "usr/share/edk2-armvirt/aarch64/QEMU_CODE.fd",
    vars: "usr/share/edk2-armvirt/aarch64/QEMU_VARS.fd",
    kind: "pflash",
  },
  {
    name: "Debian's plain QEMU_EFI.fd only (no variable store)",
    qemu: "usr/bin/qemu-system-aarch64",
    files: ["usr/share/qemu-efi-aarch64/QEMU_EFI.fd"],
    code: "usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
    vars: null,
    kind: "bios",
  },
  {
    name: "code without its variable template is passed over",
    qemu: "usr/bin/qemu-system-aarch64",
    files: [
      "opt/homebrew/share/qemu/edk2-aarch64-code.fd",
      "usr/share/AAVMF/AAVMF_CODE.fd",
      "usr/share/AAVMF/AAVMF_VARS.fd",
    ],
    code: "usr/share/AAVMF/AAVMF_CODE.fd",
    vars: "usr/share/AAVMF/AAVMF_VARS.fd",
    kind: "pflash",
  },
];

async function fakeTree(files: string[]): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "emu-fw-tree-" });
  for (const f of files) {
    await Deno.mkdir(join(root, f, ".."), { recursive: true });
    await Deno.writeFile(join(root, f), new Uint8Array(16));
  }
  return root;
}

for (const layout of LAYOUTS) {
  Deno.test(`firmware discovery: ${layout.name}`, async () => {
    const root = await fakeTree(layout.files);
    try {
      const found = findAarch64Firmware(join(root, layout.qemu), root);
      assert.ok(found, "found");
      assert.equal(found.path, join(root, layout.code));
      assert.equal(found.vars, layout.vars === null ? null : join(root, layout.vars));
      assert.equal(found.kind, layout.kind);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

Deno.test("firmware discovery: an empty tree finds none, and the error names every path and the host's package", async () => {
  const root = await fakeTree([]);
  try {
    await Deno.mkdir(join(root, "etc"));
    await Deno.writeTextFile(
      join(root, "etc/os-release"),
      'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n',
    );
    assert.equal(findAarch64Firmware(join(root, "usr/bin/qemu-system-aarch64"), root), null);
    const qemu = join(root, "usr/bin/qemu-system-aarch64");
    const e = firmwareMissing(aarch64FirmwareCandidates(qemu, root), hostKind("linux", root));
    assert.equal(e.code, "firmware_missing");
    assert.match(
      e.message,
      /^Cannot boot this arm64 image: it boots through UEFI firmware, and none is installed \(tried /,
    );
    for (const c of aarch64FirmwareCandidates(qemu, root)) {
      assert.ok(e.message.includes(c.path), c.path);
    }
    assert.equal(e.hint, "Install it: sudo apt-get install qemu-efi-aarch64");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bootFirmware: a firmware-booted arm64 image needs UEFI (refused without it); direct kernel boot and x86_64 need none", async () => {
  const input = {
    arch: "aarch64" as const,
    directKernel: false,
    found: null,
    vars: "/i/efivars.fd",
    qemuPath: "/usr/bin/qemu-system-aarch64",
    os: "linux",
  };
  assert.throws(() => bootFirmware(input), { code: "firmware_missing" });
  assert.equal(bootFirmware({ ...input, directKernel: true }), undefined);
  assert.equal(bootFirmware({ ...input, arch: "x86_64" }), undefined);
  const root = await fakeTree(["usr/share/AAVMF/AAVMF_CODE.fd", "usr/share/AAVMF/AAVMF_VARS.fd"]);
  try {
    const found = findAarch64Firmware(input.qemuPath, root);
    assert.deepEqual(bootFirmware({ ...input, found }), {
      kind: "pflash",
      code: join(root, "usr/share/AAVMF/AAVMF_CODE.fd"),
      vars: "/i/efivars.fd",
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("firmware install hint per host", () => {
  const cases: [Parameters<typeof firmwareInstallHint>[0], RegExp][] = [
    [{ os: "darwin" }, /^Install it: brew install qemu/],
    [{ os: "linux", distro: ["debian"] }, /^Install it: sudo apt-get install qemu-efi-aarch64$/],
    [{ os: "linux", distro: ["ubuntu", "debian"] }, /apt-get install qemu-efi-aarch64$/],
    [{ os: "linux", distro: ["fedora"] }, /^Install it: sudo dnf install edk2-aarch64$/],
    [{ os: "linux", distro: ["arch"] }, /^Install it: sudo pacman -S edk2-aarch64$/],
    [
      { os: "linux", distro: ["gentoo"] },
      /brew install qemu \(macOS\), sudo apt-get .*dnf .*pacman/,
    ],
    [{ os: "linux" }, /brew install qemu \(macOS\)/],
  ];
  for (const [host, hint] of cases) {
    assert.match(firmwareInstallHint(host), hint, JSON.stringify(host));
  }
  const err = firmwareMissing(aarch64FirmwareCandidates("/usr/bin/qemu-system-aarch64"), {
    os: "darwin",
  });
  assert.match(err.hint!, /brew install qemu/);
});

Deno.test("os-release: ID and ID_LIKE, quoted or not", async () => {
  assert.deepEqual(osReleaseIds('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n'), [
    "ubuntu",
    "debian",
  ]);
  assert.deepEqual(osReleaseIds('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), [
    "rocky",
    "rhel",
    "centos",
    "fedora",
  ]);
  assert.deepEqual(osReleaseIds("VERSION_ID=12\n"), []);
  assert.deepEqual(hostKind("darwin"), { os: "darwin" });
  const root = await fakeTree([]);
  try {
    assert.deepEqual(hostKind("linux", root), { os: "linux" });
    await Deno.mkdir(join(root, "etc"));
    await Deno.writeTextFile(join(root, "etc/os-release"), "ID=arch\n");
    assert.deepEqual(hostKind("linux", root), { os: "linux", distro: ["arch"] });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
