import assert from "node:assert/strict";
import { accelCandidates, type AccelFacts, chooseAccelerator } from "../../../src/qemu/accel.ts";
import {
  type Accelerator,
  type Arch,
  chooseCpuModel,
  type CpuQuirks,
} from "../../../src/qemu/cpu_model.ts";

/**
 * The CPU model table: host {x86_64, arm64} × guest {x86_64, arm64} × accelerator {KVM,
 * HVF, TCG}, plus the quirk rows. Each row's reason is part of the row: it is what
 * `emu doctor` shows. Rows marked "not here" cannot run on this machine (x86_64, nested
 * KVM unusable): their command lines are covered by the golden tests in argv_test.ts.
 */
const CPU_TABLE: {
  host: Arch;
  guest: Arch;
  accel: Accelerator;
  quirks?: CpuQuirks;
  qemu?: { major: number; minor: number };
  model: string | RangeError;
  reason?: RegExp;
}[] = [
  // Native acceleration, same architecture: the host CPU as is (not here: KVM unusable).
  { host: "x86_64", guest: "x86_64", accel: "kvm", model: "host", reason: /native kvm/ },
  { host: "aarch64", guest: "aarch64", accel: "kvm", model: "host", reason: /native kvm/ },
  { host: "aarch64", guest: "aarch64", accel: "hvf", model: "host", reason: /native hvf/ },
  // Apple M4: SME. QEMU 10.0+ runs host; older QEMU aborts with host and max.
  {
    host: "aarch64",
    guest: "aarch64",
    accel: "hvf",
    quirks: { appleSme: true },
    qemu: { major: 10, minor: 0 },
    model: "host",
    reason: /QEMU 10\.0 and later keep SME from the guest/,
  },
  {
    host: "aarch64",
    guest: "aarch64",
    accel: "hvf",
    quirks: { appleSme: true },
    qemu: { major: 9, minor: 2 },
    model: "cortex-a72",
    reason: /host-arm-cpu\.sme not found.*2665, 2721, Lima PR 3044/,
  },
  // Intel Mac: HVF and 1 GiB pages.
  {
    host: "x86_64",
    guest: "x86_64",
    accel: "hvf",
    quirks: { intelMac: true },
    model: "host,-pdpe1gb",
    reason: /1 GiB pages/,
  },
  { host: "x86_64", guest: "x86_64", accel: "hvf", model: "host", reason: /native hvf/ },
  { host: "x86_64", guest: "x86_64", accel: "whpx", model: "max", reason: /WHPX/ },
  // Emulation (TCG): same architecture gets every feature TCG has.
  { host: "x86_64", guest: "x86_64", accel: "tcg", model: "max", reason: /same-architecture/ },
  { host: "aarch64", guest: "aarch64", accel: "tcg", model: "max", reason: /same-architecture/ },
  {
    host: "aarch64",
    guest: "aarch64",
    accel: "tcg",
    quirks: { appleSme: true },
    model: "max",
    reason: /same-architecture/,
  },
  // Cross-architecture TCG: a named model, chosen by measurement (BENCHMARKS.md «arm64»).
  { host: "x86_64", guest: "aarch64", accel: "tcg", model: "neoverse-n1", reason: /measured/ },
  { host: "aarch64", guest: "x86_64", accel: "tcg", model: "qemu64", reason: /baseline/ },
  // Hardware acceleration never crosses architectures.
  { host: "x86_64", guest: "aarch64", accel: "kvm", model: new RangeError() },
  { host: "aarch64", guest: "x86_64", accel: "kvm", model: new RangeError() },
  { host: "x86_64", guest: "aarch64", accel: "hvf", model: new RangeError() },
  { host: "aarch64", guest: "x86_64", accel: "hvf", model: new RangeError() },
];

for (const row of CPU_TABLE) {
  const name = `CPU model: ${row.guest} guest on ${row.host} with ${row.accel}${
    row.quirks ? ` ${JSON.stringify(row.quirks)}` : ""
  }${row.qemu ? ` QEMU ${row.qemu.major}.${row.qemu.minor}` : ""} → ${
    row.model instanceof RangeError ? "refused" : row.model
  }`;
  Deno.test(name, () => {
    const input = {
      guest: row.guest,
      host: row.host,
      accel: row.accel,
      quirks: row.quirks,
      qemu: row.qemu,
    };
    if (row.model instanceof RangeError) {
      assert.throws(() => chooseCpuModel(input), (err: unknown) => {
        assert.ok(err instanceof RangeError);
        assert.match(err.message, /hardware acceleration needs the same architecture/);
        return true;
      });
      return;
    }
    const choice = chooseCpuModel(input);
    assert.equal(choice.model, row.model);
    assert.match(choice.reason, row.reason!);
  });
}

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
