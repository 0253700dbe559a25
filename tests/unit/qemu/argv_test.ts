import assert from "node:assert/strict";
import { validateProfile } from "../../../src/config/profile.ts";
import { defaultProfileJson } from "../../../src/config/default_profile.ts";
import { buildArgv, topologyHash, type VmSpec } from "../../../src/qemu/argv.ts";

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
  const arm = buildArgv(
    demoSpec({ arch: "aarch64", machine: "virt-10.0", cpu: "cortex-a76", firmware: "/fw/code.fd" }),
  );
  assert.ok(arm.includes("if=pflash,format=raw,readonly=on,file=/fw/code.fd"));
});

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
