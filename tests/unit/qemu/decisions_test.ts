import assert from "node:assert/strict";
import { accelCandidates, type AccelFacts, chooseAccelerator } from "../../../src/qemu/accel.ts";
import {
  type Accelerator,
  type Arch,
  chooseCpuModel,
  type CpuQuirks,
} from "../../../src/qemu/cpu_model.ts";
import { aarch64FirmwareCandidates, pickFirmware } from "../../../src/qemu/firmware.ts";

Deno.test("CPU model table", () => {
  const table: [Arch, Arch, Accelerator, CpuQuirks, string][] = [
    ["x86_64", "x86_64", "kvm", {}, "host"],
    ["aarch64", "aarch64", "kvm", {}, "host"],
    ["aarch64", "aarch64", "hvf", {}, "host"],
    ["aarch64", "aarch64", "hvf", { appleSme: true }, "max"],
    ["x86_64", "x86_64", "hvf", { intelMac: true }, "host,-pdpe1gb"],
    ["x86_64", "x86_64", "whpx", {}, "max"],
    ["x86_64", "x86_64", "tcg", {}, "max"],
    ["aarch64", "aarch64", "tcg", { appleSme: true }, "max"],
    ["aarch64", "x86_64", "tcg", {}, "cortex-a76"],
    ["x86_64", "aarch64", "tcg", {}, "qemu64"],
  ];
  for (const [guest, host, accel, quirks, model] of table) {
    const choice = chooseCpuModel({ guest, host, accel, quirks });
    assert.equal(
      choice.model,
      model,
      `${guest} on ${host} with ${accel} ${JSON.stringify(quirks)}`,
    );
    assert.ok(choice.reason.length > 10);
  }
  assert.throws(
    () => chooseCpuModel({ guest: "aarch64", host: "x86_64", accel: "kvm" }),
    RangeError,
  );
});

const LINUX: AccelFacts = {
  os: "linux",
  hostArch: "x86_64",
  guestArch: "x86_64",
  qemuAccels: ["tcg", "kvm"],
  kvmDevice: "rw",
};

Deno.test("accelerator candidates per OS, each rejection with its reason", () => {
  assert.deepEqual(accelCandidates(LINUX), { toProbe: ["kvm"], rejected: [] });
  assert.deepEqual(accelCandidates({ ...LINUX, kvmDevice: "missing" }).rejected, [
    { accel: "kvm", reason: "/dev/kvm does not exist (no KVM in this kernel or VM)" },
  ]);
  assert.match(
    accelCandidates({ ...LINUX, kvmDevice: "no-access" }).rejected[0].reason,
    /kvm group/,
  );
  assert.match(
    accelCandidates({ ...LINUX, qemuAccels: ["tcg"] }).rejected[0].reason,
    /built without kvm/,
  );
  assert.match(
    accelCandidates({ ...LINUX, guestArch: "aarch64" }).rejected[0].reason,
    /same architecture/,
  );
  const mac: AccelFacts = {
    os: "darwin",
    hostArch: "aarch64",
    guestArch: "aarch64",
    qemuAccels: ["tcg", "hvf"],
    hvSupport: true,
  };
  assert.deepEqual(accelCandidates(mac).toProbe, ["hvf"]);
  assert.match(accelCandidates({ ...mac, rosetta: true }).rejected[0].reason, /Rosetta/);
  assert.match(accelCandidates({ ...mac, hvSupport: false }).rejected[0].reason, /kern.hv_support/);
  assert.deepEqual(
    accelCandidates({
      os: "windows",
      hostArch: "x86_64",
      guestArch: "x86_64",
      qemuAccels: ["tcg", "whpx"],
    }).toProbe,
    ["whpx"],
  );
  assert.deepEqual(
    accelCandidates({
      os: "freebsd",
      hostArch: "x86_64",
      guestArch: "x86_64",
      qemuAccels: ["tcg"],
    }),
    { toProbe: [], rejected: [] },
  );
});

Deno.test("chooseAccelerator: a working, fast KVM wins", () => {
  const d = chooseAccelerator(accelCandidates(LINUX), {
    tcg: { ok: true, ms: 170 },
    kvm: { ok: true, ms: 60 },
  });
  assert.equal(d.accel, "kvm");
  assert.deepEqual(d.timings, { tcg: 170, kvm: 60 });
  assert.deepEqual(d.rejected, []);
});

Deno.test("chooseAccelerator: nested KVM that crashes (MSR assertion) falls back to TCG with the reason", () => {
  const reason =
    "QEMU was killed by SIGABRT running the test guest under kvm: failed to set MSR 0x10a";
  const d = chooseAccelerator(accelCandidates(LINUX), {
    tcg: { ok: true, ms: 170 },
    kvm: { ok: false, reason },
  });
  assert.equal(d.accel, "tcg");
  assert.deepEqual(d.rejected, [{ accel: "kvm", reason }]);
  assert.equal(d.reason, "TCG (software emulation): no hardware accelerator passed the test");
});

Deno.test("chooseAccelerator: KVM far slower than TCG (nested, 5.7 s vs 0.17 s) is rejected", () => {
  const d = chooseAccelerator(accelCandidates(LINUX), {
    tcg: { ok: true, ms: 170 },
    kvm: { ok: true, ms: 5700 },
  });
  assert.equal(d.accel, "tcg");
  assert.equal(
    d.rejected[0].reason,
    "the test guest took 5.70 s under kvm but 0.17 s under TCG (nested virtualization?)",
  );
  assert.equal(
    chooseAccelerator(accelCandidates(LINUX), {
      tcg: { ok: true, ms: 170 },
      kvm: { ok: true, ms: 700 },
    }).accel,
    "kvm",
  );
});

Deno.test("chooseAccelerator: no candidates means TCG; TCG failing is an error", () => {
  assert.equal(
    chooseAccelerator({ toProbe: [], rejected: [] }, { tcg: { ok: true, ms: 100 } }).reason,
    "TCG (software emulation): no hardware accelerator on this host",
  );
  assert.throws(
    () => chooseAccelerator({ toProbe: [], rejected: [] }, { tcg: { ok: false, reason: "boom" } }),
    /even with TCG: boom/,
  );
});

Deno.test("aarch64 firmware search covers Homebrew, Debian/Ubuntu, Fedora and Arch, and lists what it tried", () => {
  const candidates = aarch64FirmwareCandidates("/opt/homebrew/bin/qemu-system-aarch64");
  const paths = candidates.map((c) => c.path);
  for (
    const expected of [
      "/opt/homebrew/share/qemu/edk2-aarch64-code.fd",
      "/usr/local/share/qemu/edk2-aarch64-code.fd",
      "/usr/share/AAVMF/AAVMF_CODE.fd",
      "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
      "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw",
      "/usr/share/edk2/aarch64/QEMU_CODE.fd",
    ]
  ) assert.ok(paths.includes(expected), expected);
  assert.deepEqual(pickFirmware(candidates, (p) => p === "/usr/share/AAVMF/AAVMF_CODE.fd"), {
    path: "/usr/share/AAVMF/AAVMF_CODE.fd",
    kind: "pflash",
  });
  assert.equal(pickFirmware(candidates, (p) => p.endsWith("QEMU_EFI.fd")).kind, "bios");
  assert.throws(() => pickFirmware(candidates, () => false), (err: unknown) => {
    const e = err as { code: string; message: string; hint: string };
    assert.equal(e.code, "firmware_missing");
    for (const p of paths) assert.ok(e.message.includes(p), p);
    assert.match(e.hint, /qemu-efi-aarch64/);
    return true;
  });
});
