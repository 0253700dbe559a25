import assert from "node:assert/strict";
import { validateProfile } from "../../../src/config/profile.ts";
import { defaultProfileJson } from "../../../src/config/default_profile.ts";
import { buildArgv, topologyHash, type VmSpec } from "../../../src/qemu/argv.ts";
import {
  type Accelerator,
  type Arch,
  chooseCpuModel,
  type CpuQuirks,
} from "../../../src/qemu/cpu_model.ts";
import { machineOption } from "../../../src/qemu/machine.ts";

/** The demo profile's VM, as the lifecycle will describe it. */
function demoSpec(overrides: Partial<VmSpec> = {}): VmSpec {
  const profile = validateProfile(defaultProfileJson("/home/ada/.emu"));
  return {
    arch: "x86_64",
    machine: "pc-q35-10.0",
    accel: "tcg",
    cpu: "max",
    memoryMib: profile.vm.memory_mib,
    cpus: profile.vm.cpus,
    disk: "/home/ada/.emu/instances/default/run.qcow2",
    runtimeIso: "/home/ada/.emu/instances/default/runtime.iso",
    forwards: Object.entries(profile.ports).map(([name, p]) => ({
      name,
      host: p.host,
      guest: p.guest,
    })),
    qmpSocket: "/tmp/emu-1000/default.qmp",
    qgaSocket: "/tmp/emu-1000/default.qga",
    serialLog: "/home/ada/.emu/instances/default/serial.log",
    name: "default",
    pidFile: "/home/ada/.emu/instances/default/qemu.pid",
    ...overrides,
  };
}

const GOLDEN_COLD_BOOT = [
  "-name",
  "default,process=emu-default",
  "-nodefaults",
  "-machine",
  "pc-q35-10.0",
  "-accel",
  "tcg",
  "-cpu",
  "max",
  "-m",
  "1024",
  "-smp",
  "2",
  "-drive",
  "if=none,id=disk0,format=qcow2,file=/home/ada/.emu/instances/default/run.qcow2,discard=unmap",
  "-device",
  "virtio-blk-pci,drive=disk0,id=vd0,bootindex=0",
  "-drive",
  "if=none,id=cfg0,format=raw,readonly=on,file=/home/ada/.emu/instances/default/runtime.iso",
  "-device",
  "virtio-blk-pci,drive=cfg0,id=vd1",
  "-netdev",
  "user,id=net0,ipv6=off,hostfwd=tcp:127.0.0.1:26700-:8080,hostfwd=tcp:127.0.0.1:26701-:5432",
  "-device",
  "virtio-net-pci,netdev=net0,id=nic0",
  "-device",
  "virtio-serial-pci,id=vser0",
  "-chardev",
  "socket,id=qga0,path=/tmp/emu-1000/default.qga,server=on,wait=off",
  "-device",
  "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
  "-chardev",
  "socket,id=qmp0,path=/tmp/emu-1000/default.qmp,server=on,wait=off",
  "-mon",
  "chardev=qmp0,mode=control",
  "-device",
  "vmgenid,id=vmgen0",
  "-object",
  "rng-random,id=rng0,filename=/dev/urandom",
  "-device",
  "virtio-rng-pci,rng=rng0,id=rng0dev",
  "-display",
  "none",
  "-serial",
  "file:/home/ada/.emu/instances/default/serial.log",
  "-daemonize",
  "-pidfile",
  "/home/ada/.emu/instances/default/qemu.pid",
]; // deno-fmt-ignore

Deno.test("argv: golden cold boot of the demo profile, in the topology's fixed order", () => {
  assert.deepEqual(buildArgv(demoSpec()), GOLDEN_COLD_BOOT);
});

Deno.test("argv: capture uses the cold-boot line; resume differs only by -incoming defer", () => {
  const cold = buildArgv(demoSpec());
  // Capture runs on the snapshot's staging disk with its own sockets and name: the line
  // is the cold boot's with those paths swapped, nothing else.
  const paths: [string, string][] = [
    ["/home/ada/.emu/instances/default/run.qcow2", "/h/snapshots/i/.staging/disk.qcow2"],
    ["/home/ada/.emu/instances/default/runtime.iso", "/h/snapshots/i/.staging/runtime.iso"],
    ["/tmp/emu-1000/default.qmp", "/tmp/emu-1000/capture-1.qmp"],
    ["/tmp/emu-1000/default.qga", "/tmp/emu-1000/capture-1.qga"],
    ["/home/ada/.emu/instances/default/serial.log", "/h/snapshots/i/.staging/capture.log"],
    ["/home/ada/.emu/instances/default/qemu.pid", "/h/snapshots/i/.staging/qemu.pid"],
    ["default", "capture-1"],
  ];
  const capture = buildArgv(demoSpec({
    disk: paths[0][1],
    runtimeIso: paths[1][1],
    qmpSocket: paths[2][1],
    qgaSocket: paths[3][1],
    serialLog: paths[4][1],
    pidFile: paths[5][1],
    name: "capture-1",
  }));
  assert.notDeepEqual(capture, cold);
  const back = capture.map((arg) =>
    paths.reduce((a, [instance, staging]) => a.replaceAll(staging, instance), arg)
  );
  assert.deepEqual(back, cold);
  const resume = buildArgv(demoSpec({ incoming: true }));
  const at = resume.indexOf("-incoming");
  assert.deepEqual(resume.slice(at, at + 2), ["-incoming", "defer"]);
  assert.deepEqual([...resume.slice(0, at), ...resume.slice(at + 2)], cold);
});

Deno.test("argv: direct kernel boot and aarch64 firmware", () => {
  const argv = buildArgv(
    demoSpec({ kernel: { path: "/img/vmlinuz", initrd: "/img/initrd", append: "console=ttyS0" } }),
  );
  assert.ok(
    argv.includes("virtio-blk-pci,drive=disk0,id=vd0"),
    "no bootindex: the kernel loader owns index 0",
  );
  const k = argv.indexOf("-kernel");
  assert.deepEqual(argv.slice(k, k + 6), [
    "-kernel",
    "/img/vmlinuz",
    "-initrd",
    "/img/initrd",
    "-append",
    "console=ttyS0",
  ]);
});

Deno.test("argv: a firmware-booted arm64 guest (golden): UEFI code read-only, its own variable store, GICv3, no vmgenid", () => {
  const spec = demoSpec({
    arch: "aarch64",
    machine: machineOption("virt-10.0", "aarch64", "tcg").value,
    cpu: "neoverse-n1",
    forwards: [{ name: "api", host: 36700, guest: 8080 }],
    firmware: {
      kind: "pflash",
      code: "/usr/share/AAVMF/AAVMF_CODE.fd",
      vars: "/home/ada/.emu/instances/default/efivars.fd",
    },
  });
  assert.deepEqual(buildArgv(spec), [
    "-name",
    "default,process=emu-default",
    "-nodefaults",
    "-machine",
    "virt-10.0,gic-version=3",
    "-accel",
    "tcg",
    "-cpu",
    "neoverse-n1",
    "-drive",
    "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
    "-drive",
    "if=pflash,format=raw,unit=1,file=/home/ada/.emu/instances/default/efivars.fd",
    "-m",
    "1024",
    "-smp",
    "2",
    "-drive",
    "if=none,id=disk0,format=qcow2,file=/home/ada/.emu/instances/default/run.qcow2,discard=unmap",
    "-device",
    "virtio-blk-pci,drive=disk0,id=vd0,bootindex=0",
    "-drive",
    "if=none,id=cfg0,format=raw,readonly=on,file=/home/ada/.emu/instances/default/runtime.iso",
    "-device",
    "virtio-blk-pci,drive=cfg0,id=vd1",
    "-netdev",
    "user,id=net0,ipv6=off,hostfwd=tcp:127.0.0.1:36700-:8080",
    "-device",
    "virtio-net-pci,netdev=net0,id=nic0",
    "-device",
    "virtio-serial-pci,id=vser0",
    "-chardev",
    "socket,id=qga0,path=/tmp/emu-1000/default.qga,server=on,wait=off",
    "-device",
    "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
    "-chardev",
    "socket,id=qmp0,path=/tmp/emu-1000/default.qmp,server=on,wait=off",
    "-mon",
    "chardev=qmp0,mode=control",
    "-object",
    "rng-random,id=rng0,filename=/dev/urandom",
    "-device",
    "virtio-rng-pci,rng=rng0,id=rng0dev",
    "-display",
    "none",
    "-serial",
    "file:/home/ada/.emu/instances/default/serial.log",
    "-daemonize",
    "-pidfile",
    "/home/ada/.emu/instances/default/qemu.pid",
  ]);
  // A plain -bios image (no variable store).
  const bios = buildArgv({
    ...spec,
    firmware: { kind: "bios", code: "/fw/QEMU_EFI.fd", vars: null },
  });
  assert.deepEqual(bios.slice(bios.indexOf("-bios"), bios.indexOf("-bios") + 2), [
    "-bios",
    "/fw/QEMU_EFI.fd",
  ]);
  assert.ok(!bios.some((a) => a.startsWith("if=pflash")));
  // The variable store's path is per run, so it is not part of the topology hash; its
  // presence is.
  const moved = { ...spec, firmware: { ...spec.firmware!, vars: "/elsewhere/efivars.fd" } };
  assert.equal(topologyHash(moved), topologyHash(spec));
  assert.notEqual(topologyHash({ ...spec, firmware: undefined }), topologyHash(spec));
  assert.throws(
    () => buildArgv({ ...spec, firmware: { ...spec.firmware!, vars: "efivars.fd" } }),
    { message: /UEFI variable store "efivars.fd" is not an absolute path/ },
  );
});

/**
 * The accelerated command lines emu would run on hosts this machine is not (macOS with
 * HVF, Linux with a working KVM, arm64 hosts): they cannot run here, so each host pair's
 * machine, accelerator and CPU, as the probe's decisions make them, is pinned here.
 */
const HOST_PAIRS: {
  host: string;
  hostArch: Arch;
  guest: Arch;
  accel: Accelerator;
  quirks?: CpuQuirks;
  qemu?: { major: number; minor: number };
  expect: string[];
}[] = [
  {
    host: "Linux x86_64 with KVM",
    hostArch: "x86_64",
    guest: "x86_64",
    accel: "kvm",
    expect: ["-machine", "pc-q35-10.0", "-accel", "kvm", "-cpu", "host"],
  },
  {
    host: "Linux arm64 with KVM (e.g. Graviton)",
    hostArch: "aarch64",
    guest: "aarch64",
    accel: "kvm",
    expect: ["-machine", "virt-10.0,gic-version=host", "-accel", "kvm", "-cpu", "host"],
  },
  {
    host: "macOS on Apple M1–M3 (HVF)",
    hostArch: "aarch64",
    guest: "aarch64",
    accel: "hvf",
    expect: ["-machine", "virt-10.0", "-accel", "hvf", "-cpu", "host"],
  },
  {
    host: "macOS on Apple M4 (HVF), QEMU 10.0",
    hostArch: "aarch64",
    guest: "aarch64",
    accel: "hvf",
    quirks: { appleSme: true },
    qemu: { major: 10, minor: 0 },
    expect: ["-machine", "virt-10.0", "-accel", "hvf", "-cpu", "host"],
  },
  {
    host: "macOS on Apple M4 (HVF), QEMU 9.2",
    hostArch: "aarch64",
    guest: "aarch64",
    accel: "hvf",
    quirks: { appleSme: true },
    qemu: { major: 9, minor: 2 },
    expect: ["-machine", "virt-9.2", "-accel", "hvf", "-cpu", "cortex-a72"],
  },
  {
    host: "macOS on Intel (HVF)",
    hostArch: "x86_64",
    guest: "x86_64",
    accel: "hvf",
    quirks: { intelMac: true },
    expect: ["-machine", "pc-q35-10.0", "-accel", "hvf", "-cpu", "host,-pdpe1gb"],
  },
  {
    host: "x86_64 host, arm64 guest (TCG; runs here)",
    hostArch: "x86_64",
    guest: "aarch64",
    accel: "tcg",
    expect: ["-machine", "virt-10.0,gic-version=3", "-accel", "tcg", "-cpu", "neoverse-n1"],
  },
  {
    host: "arm64 host, x86_64 guest (TCG)",
    hostArch: "aarch64",
    guest: "x86_64",
    accel: "tcg",
    expect: ["-machine", "pc-q35-10.0", "-accel", "tcg", "-cpu", "qemu64"],
  },
];

for (const pair of HOST_PAIRS) {
  Deno.test(`argv (golden, not runnable here unless TCG): ${pair.host}, ${pair.guest} guest`, () => {
    const versioned = pair.guest === "x86_64"
      ? "pc-q35-10.0"
      : `virt-${pair.qemu ? `${pair.qemu.major}.${pair.qemu.minor}` : "10.0"}`;
    const argv = buildArgv(demoSpec({
      arch: pair.guest,
      machine: machineOption(versioned, pair.guest, pair.accel).value,
      accel: pair.accel,
      cpu: chooseCpuModel({
        guest: pair.guest,
        host: pair.hostArch,
        accel: pair.accel,
        quirks: pair.quirks,
        qemu: pair.qemu,
      }).model,
    }));
    const at = argv.indexOf("-machine");
    assert.deepEqual(argv.slice(at, at + 6), pair.expect);
    assert.equal(argv.includes("vmgenid,id=vmgen0"), pair.guest === "x86_64");
  });
}

Deno.test("argv: a relative path is refused (QEMU's -daemonize changes directory to /)", () => {
  assert.throws(() => buildArgv(demoSpec({ disk: "instances/default/run.qcow2" })), {
    code: "internal",
    message:
      'Cannot build the QEMU command line: disk "instances/default/run.qcow2" is not an absolute path',
  });
  assert.throws(() => buildArgv(demoSpec({ kernel: { path: "vmlinuz" } })), {
    message: /kernel "vmlinuz"/,
  });
});

Deno.test("topologyHash: stable across host paths and host ports, changed by what the snapshot depends on", () => {
  const base = topologyHash(demoSpec());
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(topologyHash(demoSpec()), base);
  assert.equal(
    topologyHash(
      demoSpec({
        disk: "/other/run.qcow2",
        qmpSocket: "/r/x.qmp",
        serialLog: "/s",
        incoming: true,
        pidFile: undefined,
        name: "ci",
      }),
    ),
    base,
  );
  assert.equal(
    topologyHash(
      demoSpec({
        forwards: [{ name: "api", host: 36700, guest: 8080 }, {
          name: "db",
          host: 36701,
          guest: 5432,
        }],
      }),
    ),
    base,
  );
  for (
    const change of [
      { memoryMib: 2048 },
      { cpus: 4 },
      { cpu: "qemu64" },
      { accel: "kvm" as const },
      { machine: "pc-q35-9.2" },
      { forwards: [{ name: "api", host: 26700, guest: 9090 }] },
      { kernel: { path: "/k", append: "quiet" } },
    ]
  ) assert.notEqual(topologyHash(demoSpec(change)), base, JSON.stringify(change));
});

Deno.test("argv: guest RAM in a file (a snapshot's capture and lazy resume), the same topology as anonymous RAM", () => {
  const capture = buildArgv(demoSpec({ ramFile: { path: "/s/ram.raw", shared: true } }));
  assert.equal(capture[capture.indexOf("-machine") + 1], "pc-q35-10.0,memory-backend=pc.ram");
  assert.equal(
    capture[capture.lastIndexOf("-object") + 1],
    "memory-backend-file,id=pc.ram,size=1024M,mem-path=/s/ram.raw,share=on,x-use-canonical-path-for-ramblock-id=off",
  );
  const resume = buildArgv(demoSpec({ ramFile: { path: "/s/ram.raw", shared: false } }));
  assert.match(resume[resume.lastIndexOf("-object") + 1], /,share=off,/);
  const arm = buildArgv(
    demoSpec({
      arch: "aarch64",
      machine: "virt-10.0,gic-version=3",
      ramFile: { path: "/r", shared: false },
    }),
  );
  assert.equal(
    arm[arm.indexOf("-machine") + 1],
    "virt-10.0,gic-version=3,memory-backend=mach-virt.ram",
  );
  assert.match(arm[arm.lastIndexOf("-object") + 1], /^memory-backend-file,id=mach-virt\.ram,/);
  // Where RAM lives is not topology: a state saved either way loads into the other.
  assert.equal(
    topologyHash(demoSpec({ ramFile: { path: "/s/ram.raw", shared: true } })),
    topologyHash(demoSpec()),
  );
  assert.throws(() => buildArgv(demoSpec({ ramFile: { path: "ram.raw", shared: false } })), {
    message: /RAM file "ram.raw" is not an absolute path/,
  });
});
