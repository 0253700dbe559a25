import assert from "node:assert/strict";
import {
  parseAccelHelp,
  parseCpuHelp,
  parseMachineHelp,
  parseQemuVersion,
  pickMachineType,
  versionAtLeast,
} from "../../../src/qemu/capabilities.ts";

Deno.test("parseQemuVersion reads system and qemu-img versions", () => {
  assert.deepEqual(
    parseQemuVersion(
      "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright (c) 2003-2025",
    ),
    {
      major: 10,
      minor: 0,
      micro: 2,
      text: "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)",
    },
  );
  assert.equal(
    parseQemuVersion("qemu-img version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)")?.minor,
    2,
  );
  assert.equal(parseQemuVersion("QEMU emulator version 9.1")?.micro, 0);
  assert.equal(parseQemuVersion("bash: qemu: command not found"), null);
});

Deno.test("versionAtLeast compares major then minor", () => {
  assert.equal(versionAtLeast({ major: 10, minor: 0 }, { major: 9, minor: 0 }), true);
  assert.equal(versionAtLeast({ major: 9, minor: 0 }, { major: 9, minor: 0 }), true);
  assert.equal(versionAtLeast({ major: 8, minor: 2 }, { major: 9, minor: 0 }), false);
  assert.equal(versionAtLeast({ major: 7, minor: 2 }, { major: 9, minor: 0 }), false);
});

Deno.test("parseAccelHelp lists accelerators", () => {
  assert.deepEqual(parseAccelHelp("Accelerators supported in QEMU binary:\ntcg\nkvm\n"), [
    "tcg",
    "kvm",
  ]);
  assert.deepEqual(parseAccelHelp("Accelerators supported in QEMU binary:\ntcg\nhvf\n"), [
    "tcg",
    "hvf",
  ]);
});

const X86_MACHINES = `Supported machines are:
microvm              microvm (i386)
pc-i440fx-9.2        Standard PC (i440FX + PIIX, 1996)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-10.0)
pc-i440fx-10.0       Standard PC (i440FX + PIIX, 1996) (default)
pc-q35-9.2           Standard PC (Q35 + ICH9, 2009)
pc-q35-2.12          Standard PC (Q35 + ICH9, 2009) (deprecated)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-10.0)
pc-q35-10.0          Standard PC (Q35 + ICH9, 2009)
none                 empty machine
`;

Deno.test("parseMachineHelp reads aliases, default and deprecation", () => {
  const machines = parseMachineHelp(X86_MACHINES);
  assert.equal(machines.length, 9);
  assert.deepEqual(machines.find((m) => m.name === "q35"), {
    name: "q35",
    description: "Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-10.0)",
    aliasOf: "pc-q35-10.0",
    isDefault: false,
    deprecated: false,
  });
  assert.equal(machines.find((m) => m.name === "pc-i440fx-10.0")?.isDefault, true);
  assert.equal(machines.find((m) => m.name === "pc-q35-2.12")?.deprecated, true);
});

Deno.test("pickMachineType: the versioned type behind q35/virt, else the newest", () => {
  assert.equal(pickMachineType(parseMachineHelp(X86_MACHINES), "x86_64"), "pc-q35-10.0");
  const noAlias = parseMachineHelp(
    "pc-q35-9.2   Standard PC\npc-q35-10.1  Standard PC\npc-q35-10.0  Standard PC\n",
  );
  assert.equal(pickMachineType(noAlias, "x86_64"), "pc-q35-10.1");
  const arm = parseMachineHelp(
    "virt-9.2   QEMU 9.2 ARM Virtual Machine\nvirt       QEMU 10.0 ARM Virtual Machine (alias of virt-10.0)\nvirt-10.0  QEMU 10.0 ARM Virtual Machine\n",
  );
  assert.equal(pickMachineType(arm, "aarch64"), "virt-10.0");
  assert.equal(pickMachineType(parseMachineHelp("none  empty machine\n"), "x86_64"), null);
  assert.equal(pickMachineType(parseMachineHelp(X86_MACHINES), "riscv64"), null);
});

Deno.test("parseCpuHelp lists models before the flags section", () => {
  const models = parseCpuHelp(
    "Available CPUs:\n  486                   (alias configured by machine type)\n  host                  processor with all supported host features \n  max                   Enables all features\n  qemu64                (alias configured by machine type)\n\nRecognized CPUID flags:\n  3dnow 3dnowext\n",
  );
  assert.deepEqual(models, ["486", "host", "max", "qemu64"]);
  assert.deepEqual(parseCpuHelp("Available CPUs:\n  cortex-a76\n  max\n"), ["cortex-a76", "max"]);
});
