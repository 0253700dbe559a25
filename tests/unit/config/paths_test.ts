import assert from "node:assert/strict";
import {
  checkSocketPath,
  homeLayout,
  homeTag,
  instancePaths,
  MAX_SOCKET_PATH_BYTES,
  resolveHome,
  resolveRuntimeDir,
  validateInstanceName,
} from "../../../src/config/paths.ts";
import { EmuError } from "../../../src/errors.ts";

Deno.test("resolveHome prefers --home over EMU_HOME over ~/.emu", () => {
  const env = { HOME: "/home/ada", EMU_HOME: "/srv/emu" };
  assert.equal(resolveHome({ flag: "/opt/emu", env, cwd: "/" }), "/opt/emu");
  assert.equal(resolveHome({ env, cwd: "/" }), "/srv/emu");
  assert.equal(resolveHome({ env: { HOME: "/home/ada" }, cwd: "/" }), "/home/ada/.emu");
});

Deno.test("resolveHome makes relative and ~ paths absolute", () => {
  assert.equal(resolveHome({ flag: "state", env: {}, cwd: "/work" }), "/work/state");
  assert.equal(resolveHome({ flag: "~/x", env: { HOME: "/home/ada" }, cwd: "/" }), "/home/ada/x");
  assert.equal(resolveHome({ env: { EMU_HOME: "", HOME: "/h" }, cwd: "/" }), "/h/.emu");
});

Deno.test("resolveHome without HOME says how to set it", () => {
  assert.throws(() => resolveHome({ env: {}, cwd: "/" }), (err: unknown) => {
    assert.ok(err instanceof EmuError);
    assert.equal(err.code, "home_unusable");
    assert.equal(err.hint, "Set EMU_HOME or pass --home DIR.");
    return true;
  });
});

Deno.test("resolveRuntimeDir: EMU_RUNTIME_DIR, then XDG_RUNTIME_DIR/emu, then /tmp/emu-<uid>", () => {
  assert.equal(
    resolveRuntimeDir({
      env: { EMU_RUNTIME_DIR: "/r", XDG_RUNTIME_DIR: "/run/user/1" },
      uid: 1,
      tmpDir: "/tmp",
    }),
    "/r",
  );
  assert.equal(
    resolveRuntimeDir({ env: { XDG_RUNTIME_DIR: "/run/user/1" }, uid: 1, tmpDir: "/tmp" }),
    "/run/user/1/emu",
  );
  assert.equal(
    resolveRuntimeDir({ env: { XDG_RUNTIME_DIR: "relative" }, uid: 7, tmpDir: "/tmp" }),
    "/tmp/emu-7",
  );
  assert.equal(resolveRuntimeDir({ env: {}, uid: null, tmpDir: "/var/tmp" }), "/var/tmp/emu");
});

Deno.test("resolveRuntimeDir refuses a relative EMU_RUNTIME_DIR", () => {
  assert.throws(
    () => resolveRuntimeDir({ env: { EMU_RUNTIME_DIR: "sock" }, uid: 1, tmpDir: "/tmp" }),
    {
      code: "runtime_dir_unusable",
      message: 'Cannot use EMU_RUNTIME_DIR: "sock" is not an absolute path',
    },
  );
});

Deno.test("homeLayout follows docs/architecture.md, «On-disk layout»", () => {
  assert.deepEqual(homeLayout("/h"), {
    home: "/h",
    images: "/h/images",
    snapshots: "/h/snapshots",
    instances: "/h/instances",
    downloads: "/h/downloads",
    probe: "/h/probe.json",
    releases: "/h/releases-seen.json",
  });
});

Deno.test("instancePaths puts sockets in the runtime dir and files in the instance dir", () => {
  assert.deepEqual(instancePaths("/h", "/tmp/emu-0", "default"), {
    dir: "/h/instances/default",
    runDisk: "/h/instances/default/run.qcow2",
    serialLog: "/h/instances/default/serial.log",
    runtimeIso: "/h/instances/default/runtime.iso",
    record: "/h/instances/default/instance.json",
    secretsFile: "/h/instances/default/secrets.env",
    lock: "/h/instances/default/lock",
    pidFile: "/h/instances/default/qemu.pid",
    qmpSocket: "/tmp/emu-0/141582aa-default.qmp",
    qgaSocket: "/tmp/emu-0/141582aa-default.qga",
  });
});

Deno.test("two emu homes never share a socket name, even for the same instance name", () => {
  const a = instancePaths("/home/ada/.emu", "/tmp/emu-0", "default");
  const b = instancePaths("/home/ada/other-home", "/tmp/emu-0", "default");
  assert.notEqual(a.qmpSocket, b.qmpSocket);
  assert.notEqual(a.qgaSocket, b.qgaSocket);
  assert.equal(homeTag("/home/ada/.emu").length, 8);
  assert.ok(a.qmpSocket.startsWith(`/tmp/emu-0/${homeTag("/home/ada/.emu")}-`));
});

Deno.test("socket paths longer than the portable limit are refused with the fix", () => {
  const dir = "/" + "d".repeat(MAX_SOCKET_PATH_BYTES - "/x.qmp".length);
  assert.doesNotThrow(() => checkSocketPath(`${dir.slice(0, -1)}/x.qmp`));
  assert.throws(() => instancePaths("/h", dir, "xy"), (err: unknown) => {
    assert.ok(err instanceof EmuError);
    assert.equal(err.code, "socket_path_too_long");
    assert.match(err.message, /is 114 bytes, the limit is 103$/);
    assert.match(err.hint ?? "", /EMU_RUNTIME_DIR/);
    return true;
  });
});

Deno.test("socket path length counts UTF-8 bytes, not characters", () => {
  const path = "/" + "é".repeat(52); // 105 bytes, 53 characters
  assert.throws(() => checkSocketPath(path), { code: "socket_path_too_long" });
});

Deno.test("instance names: lowercase, digits, - and _, at most 32", () => {
  for (const ok of ["default", "a", "ci-1", "x_y", "0".repeat(32)]) {
    assert.equal(validateInstanceName(ok), ok);
  }
  for (const bad of ["", "Default", "-a", "a/b", "..", "a b", "0".repeat(33)]) {
    assert.throws(() => validateInstanceName(bad), { code: "usage" }, bad);
  }
});
