/**
 * docs/emu.schema.json, generated from the profile's declaration, agrees with emu's own
 * validation: checked by an independent JSON Schema validator (Ajv, draft 2020-12) on
 * profiles both accept and on bad ones both refuse.
 */
import assert from "node:assert/strict";
// @ts-types="npm:ajv@8.20.0/dist/2020.d.ts"
import Ajv2020 from "ajv/dist/2020.js";
import { defaultProfileJson } from "../../../src/config/default_profile.ts";
import { validateProfile } from "../../../src/config/profile.ts";

const SCHEMA = JSON.parse(
  await Deno.readTextFile(new URL("../../../docs/emu.schema.json", import.meta.url)),
);
// deno-lint-ignore no-explicit-any
const ajv = new (Ajv2020 as any)({ strict: false, allErrors: true });
const schemaAccepts: (value: unknown) => boolean = ajv.compile(SCHEMA);

const PEM = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
const GOOD: unknown[] = [
  { name: "x", image: { source: "./image" } },
  defaultProfileJson("/h"),
  defaultProfileJson("/h", { source: "github:acme/emu#demo-v", publicKey: PEM }),
  {
    $schema: "https://example.com/emu.schema.json",
    name: "shop",
    image: { source: "https://dl.example.com/manifest.json", version: "1.4.0", public_key: PEM },
    vm: { memory_mib: 2048, cpus: 4 },
    ports: {
      api: { guest: 8080, host: 26700 },
      db: { guest: 5432, host: 26701, scheme: "postgres" },
    },
    health: [{ name: "api", port: "api", path: "/health", status: 204 }],
    secrets: { API_SECRET: "hex32", TOKEN: "base64url24" },
    rotate: { command: "/usr/local/bin/emu-rotate", timeout_s: 20 },
    runtime: { MODE: "dev" },
  },
];
const BAD: unknown[] = [
  [],
  { image: { source: "x" } },
  { name: "My Stack", image: { source: "x" } },
  { name: "x", image: { source: "x" }, port: {} },
  { name: "x", image: { source: "x", version: "newest" } },
  { name: "x", image: { source: "" } },
  { name: "x", image: { source: "x" }, vm: { cpus: 0 } },
  { name: "x", image: { source: "x" }, vm: { memory_mib: 1.5 } },
  { name: "x", image: { source: "x" }, ports: { api: { guest: 8080, host: 70000 } } },
  { name: "x", image: { source: "x" }, ports: { api: { guest: 8080 } } },
  { name: "x", image: { source: "x" }, health: [{ name: "h", port: "api", path: "health" }] },
  { name: "x", image: { source: "x" }, secrets: { API: "uuid" }, rotate: { command: "/r" } },
  { name: "x", image: { source: "x" }, rotate: { command: "emu-rotate" } },
];

Deno.test("schema: profiles emu accepts, the JSON Schema accepts", () => {
  for (const profile of GOOD) {
    assert.doesNotThrow(() => validateProfile(profile));
    assert.equal(schemaAccepts(profile), true, JSON.stringify(profile));
  }
});

Deno.test("schema: bad profiles are refused by both", () => {
  for (const profile of BAD) {
    assert.throws(() => validateProfile(profile), Error, JSON.stringify(profile));
    assert.equal(schemaAccepts(profile), false, JSON.stringify(profile));
  }
});
