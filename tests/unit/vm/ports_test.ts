import assert from "node:assert/strict";
import { validateProfile } from "../../../src/config/profile.ts";
import { resolvePorts } from "../../../src/vm/start.ts";

const profile = validateProfile({
  name: "shop",
  image: { source: "https://example.com/m.json" },
  ports: {
    api: { guest: 8080, host: 26700 },
    db: { guest: 9000, host: 26701, scheme: "postgres" },
  },
});

Deno.test("resolvePorts: --port overrides by name; inherited names are neither ports nor overrides", () => {
  assert.deepEqual(resolvePorts(profile, { api: 36700 }), {
    api: { guest: 8080, host: 36700, scheme: "http" },
    db: { guest: 9000, host: 26701, scheme: "postgres" },
  });
  const only = validateProfile({
    name: "shop",
    image: { source: "https://example.com/m.json" },
    ports: { api: { guest: 8080, host: 26700 } },
  });
  for (const name of ["constructor", "toString", "hasOwnProperty"]) {
    assert.throws(() => resolvePorts(only, { [name]: 1234 }), {
      code: "usage",
      message: `Cannot override port ${name}: the profile has no port named ${name}`,
    });
  }
});
