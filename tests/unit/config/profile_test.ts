import assert from "node:assert/strict";
import { defaultProfileJson } from "../../../src/config/default_profile.ts";
import { ProfileError, validateProfile } from "../../../src/config/profile.ts";

const MINIMAL = { name: "shop", image: { source: "https://example.com/m.json" } };

function full(): Record<string, unknown> {
  return structuredClone(defaultProfileJson("/h")) as Record<string, unknown>;
}

/** Asserts `raw` is rejected with, at `field`, exactly `problem` (among any others). */
function rejects(raw: unknown, field: string, problem: string): void {
  assert.throws(() => validateProfile(raw), (err: unknown) => {
    assert.ok(err instanceof ProfileError, String(err));
    assert.deepEqual(err.problems.filter((p) => p.field === field), [{ field, problem }]);
    return true;
  });
}

Deno.test("a minimal profile gets every default", () => {
  assert.deepEqual(validateProfile(MINIMAL), {
    name: "shop",
    image: { source: "https://example.com/m.json", version: "latest" },
    vm: { memory_mib: 1024, cpus: 2 },
    ports: {},
    health: [],
    secrets: {},
    runtime: {},
  });
});

Deno.test("the built-in demo profile is valid and complete", () => {
  const p = validateProfile(defaultProfileJson("/h"));
  assert.equal(p.image.source, "/h/demo/image");
  assert.deepEqual(p.ports.api, { guest: 8080, host: 26700, scheme: "http" });
  assert.deepEqual(p.ports.db, { guest: 5432, host: 26701, scheme: "postgres" });
  assert.deepEqual(p.health, [{ name: "api", port: "api", path: "/health", status: 200 }]);
  assert.deepEqual(p.secrets, { API_SECRET: "hex32", DB_PASSWORD: "hex32" });
  assert.deepEqual(p.rotate, { command: "/usr/local/bin/emu-rotate", timeout_s: 60 });
});

Deno.test("top level must be an object", () => {
  rejects([], "(top level)", "must be an object, got an array");
  rejects("x", "(top level)", 'must be an object, got "x"');
});

Deno.test("unknown fields are refused, with the closest known name", () => {
  rejects(
    { ...MINIMAL, port: {} },
    "port",
    'unknown field (did you mean "ports"?); allowed here: name, image, vm, ports, health, secrets, rotate, runtime',
  );
  rejects(
    { ...MINIMAL, vm: { memory: 512 } },
    "vm.memory",
    "unknown field; allowed here: memory_mib, cpus",
  );
  rejects(
    { ...MINIMAL, vm: { cpu: 2 } },
    "vm.cpu",
    'unknown field (did you mean "cpus"?); allowed here: memory_mib, cpus',
  );
});

Deno.test("required fields are named", () => {
  rejects({ image: { source: "x" } }, "name", "is required");
  rejects({ name: "x" }, "image", "is required");
  rejects({ name: "x", image: {} }, "image.source", "is required");
});

Deno.test("wrong types name the field and what was found", () => {
  rejects({ ...MINIMAL, name: 5 }, "name", "must be a string, got 5");
  rejects({ ...MINIMAL, vm: { cpus: "2" } }, "vm.cpus", 'must be an integer from 1 to 64, got "2"');
  rejects(
    { ...MINIMAL, vm: { memory_mib: 1.5 } },
    "vm.memory_mib",
    "must be an integer from 128 to 1048576, got 1.5",
  );
  rejects({ ...MINIMAL, vm: [] }, "vm", "must be an object, got an array");
  rejects({ ...MINIMAL, health: {} }, "health", "must be an array, got an object");
  rejects({ ...MINIMAL, image: { source: "" } }, "image.source", "must not be empty");
});

Deno.test("profile names are lowercase words", () => {
  rejects(
    { ...MINIMAL, name: "My Stack" },
    "name",
    "must be 1–63 lowercase letters, digits or '-', got \"My Stack\"",
  );
});

Deno.test("image version is latest or a semantic version", () => {
  assert.equal(
    validateProfile({ ...MINIMAL, image: { source: "x", version: "1.4.0" } }).image.version,
    "1.4.0",
  );
  assert.equal(
    validateProfile({ ...MINIMAL, image: { source: "x", version: "v2.0.0-rc.1" } }).image.version,
    "v2.0.0-rc.1",
  );
  rejects(
    { ...MINIMAL, image: { source: "x", version: "newest" } },
    "image.version",
    'must be "latest" or a version such as 1.4.0, got "newest"',
  );
});

Deno.test("public_key must be PEM", () => {
  rejects(
    { ...MINIMAL, image: { source: "x", public_key: "abc" } },
    "image.public_key",
    'must be a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----), got "abc"',
  );
  const pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
  assert.equal(
    validateProfile({ ...MINIMAL, image: { source: "x", public_key: pem } }).image.public_key,
    pem,
  );
});

Deno.test("bad ports are refused", () => {
  rejects(
    { ...MINIMAL, ports: { api: { guest: 8080, host: 70000 } } },
    "ports.api.host",
    "must be a TCP port (an integer from 1 to 65535), got 70000",
  );
  rejects(
    { ...MINIMAL, ports: { api: { guest: 0, host: 1 } } },
    "ports.api.guest",
    "must be a TCP port (an integer from 1 to 65535), got 0",
  );
  rejects(
    { ...MINIMAL, ports: { api: { guest: "80", host: 1 } } },
    "ports.api.guest",
    'must be a TCP port (an integer from 1 to 65535), got "80"',
  );
  rejects({ ...MINIMAL, ports: { api: { guest: 80 } } }, "ports.api.host", "is required");
  rejects(
    { ...MINIMAL, ports: { API: { guest: 80, host: 1 } } },
    "ports.API",
    "port names must be 1–32 lowercase letters, digits or '_', starting with a letter",
  );
});

Deno.test("a host port used twice is refused, naming both", () => {
  rejects(
    { ...MINIMAL, ports: { api: { guest: 8080, host: 26700 }, web: { guest: 80, host: 26700 } } },
    "ports.web.host",
    "host port 26700 is already used by ports.api.host",
  );
  rejects(
    { ...MINIMAL, ports: { api: { guest: 8080, host: 1 }, web: { guest: 8080, host: 2 } } },
    "ports.web.guest",
    "guest port 8080 is already forwarded by ports.api.guest",
  );
});

Deno.test("health checks must point at a named port", () => {
  const p = full();
  p.health = [{ name: "api", port: "apx", path: "/health" }];
  rejects(p, "health[0].port", '"apx" is not a name in ports (known: api, db)');
  p.health = [{ name: "api", port: "api", path: "health" }];
  rejects(p, "health[0].path", 'must be a URL path starting with /, got "health"');
  p.health = [{ name: "api", port: "api", path: "/h", status: 999 }];
  rejects(p, "health[0].status", "must be an integer from 100 to 599, got 999");
  p.health = [{ name: "a", port: "api", path: "/h" }, { name: "a", port: "db", path: "/h" }];
  rejects(p, "health[1].name", 'duplicate health check name "a"');
});

Deno.test("secrets have upper-case names and a known kind", () => {
  const p = full();
  p.secrets = { api_secret: "hex32" };
  rejects(
    p,
    "secrets.api_secret",
    "names must be uppercase letters, digits or '_', starting with a letter",
  );
  p.secrets = { API: "uuid" };
  rejects(p, "secrets.API", 'must be a kind such as "hex32" or "base64url32", got "uuid"');
  p.secrets = { API: "hex4" };
  rejects(p, "secrets.API", "must use 8 to 256 random bytes, got 4");
  p.secrets = { EMU_API_URL: "hex32" };
  rejects(p, "secrets.EMU_API_URL", "names starting with EMU_ are reserved for emu");
  p.secrets = { TOKEN: "base64url24" };
  assert.deepEqual(validateProfile(p).secrets, { TOKEN: "base64url24" });
});

Deno.test("secrets need a rotate command, and it must be absolute", () => {
  const p = full();
  delete p.rotate;
  rejects(p, "rotate", "is required when secrets are set (the guest command that applies them)");
  p.rotate = { command: "emu-rotate" };
  rejects(p, "rotate.command", 'must be an absolute path in the guest, got "emu-rotate"');
});

Deno.test("runtime values are single-line strings", () => {
  rejects(
    { ...MINIMAL, runtime: { MODE: "a\nb" } },
    "runtime.MODE",
    "must be a string without line breaks",
  );
  rejects(
    { ...MINIMAL, runtime: { MODE: 1 } },
    "runtime.MODE",
    "must be a string without line breaks",
  );
  assert.deepEqual(validateProfile({ ...MINIMAL, runtime: { MODE: "dev" } }).runtime, {
    MODE: "dev",
  });
});

Deno.test("names are looked up as the profile's own: a health check on port 'constructor' is refused", () => {
  rejects(
    { ...MINIMAL, health: [{ name: "h", port: "constructor", path: "/" }] },
    "health[0].port",
    '"constructor" is not a name in ports (known: none)',
  );
  rejects(
    { ...MINIMAL, health: [{ name: "h", port: "toString", path: "/" }] },
    "health[0].port",
    '"toString" is not a name in ports (known: none)',
  );
});

Deno.test("secrets and run-time values may not be named like variables that change how programs run", () => {
  const rotate = { command: "/usr/local/bin/emu-rotate" };
  for (
    const name of ["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "NODE_OPTIONS"]
  ) {
    rejects(
      { ...MINIMAL, rotate, secrets: { [name]: "hex32" } },
      `secrets.${name}`,
      `${name} changes how programs run (emu run passes secrets and values as environment variables); pick another name`,
    );
    rejects(
      { ...MINIMAL, runtime: { [name]: "x" } },
      `runtime.${name}`,
      `${name} changes how programs run (emu run passes secrets and values as environment variables); pick another name`,
    );
  }
});

Deno.test("a run-time value may not share its name with a secret", () => {
  rejects(
    {
      ...MINIMAL,
      rotate: { command: "/usr/local/bin/emu-rotate" },
      secrets: { API_SECRET: "hex32" },
      runtime: { API_SECRET: "known-value" },
    },
    "runtime.API_SECRET",
    "is also a secret: the guest would get two values for API_SECRET",
  );
});

Deno.test("a port's scheme defaults to http and must be a URL scheme", () => {
  const ports = (scheme?: unknown) => ({
    ...MINIMAL,
    ports: { db: { guest: 5432, host: 26701, ...(scheme === undefined ? {} : { scheme }) } },
  });
  assert.equal(validateProfile(ports()).ports.db.scheme, "http");
  assert.equal(validateProfile(ports("postgres")).ports.db.scheme, "postgres");
  rejects(
    ports("postgres://"),
    "ports.db.scheme",
    'must be a URL scheme such as "http" or "postgres", got "postgres://"',
  );
});

Deno.test("every problem of a profile is reported in one run, in order, each naming its field", () => {
  assert.throws(
    () =>
      validateProfile({
        name: "My Stack",
        image: { source: "x", version: "newest" },
        vm: { cpus: 0, memory: 512 },
        ports: { api: { guest: 8080, host: 70000 } },
        health: [{ name: "h", port: "web", path: "/" }],
        secrets: { PATH: "hex32" },
      }),
    (err: unknown) => {
      assert.ok(err instanceof ProfileError);
      assert.deepEqual(err.problems.map((p) => p.field), [
        "name",
        "image.version",
        "vm.cpus",
        "vm.memory",
        "ports.api.host",
        "secrets.PATH",
        "health[0].port",
        "rotate",
      ]);
      return true;
    },
  );
});

Deno.test("a profile may name its JSON Schema for editors; it is not part of the result", () => {
  const p = validateProfile({ ...MINIMAL, $schema: "https://example.com/emu.schema.json" });
  assert.equal("$schema" in p, false);
});

Deno.test("a port may not be named like a property every JavaScript object has", () => {
  for (const name of ["constructor", "prototype"]) {
    rejects(
      { ...MINIMAL, ports: { [name]: { guest: 80, host: 26700 } } },
      `ports.${name}`,
      `"${name}" is reserved (JavaScript objects have it); pick another port name`,
    );
  }
});
