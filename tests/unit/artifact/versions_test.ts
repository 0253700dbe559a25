/**
 * emu's semantic versions against npm's `semver`, the reference implementation (a dev
 * dependency only): the same verdicts and the same order on every pair of a list that
 * walks the spec's precedence rules.
 */
import assert from "node:assert/strict";
// @deno-types="@types/semver"
import semver from "semver";
import { compareVersions, isPrerelease, parseVersion } from "../../../src/artifact/versions.ts";

const ORDERED = [
  "0.0.1",
  "0.9.0",
  "1.0.0-0",
  "1.0.0-2",
  "1.0.0-10",
  "1.0.0-alpha",
  "1.0.0-alpha.1",
  "1.0.0-alpha.beta",
  "1.0.0-beta",
  "1.0.0-beta.2",
  "1.0.0-beta.11",
  "1.0.0-rc.1",
  "1.0.0-rc-1",
  "1.0.0-rc-2",
  "1.0.0",
  "1.0.1",
  "1.2.0",
  "1.10.0",
  "2.0.0-x-y.z",
  "2.0.0",
  "10.0.0",
];

Deno.test("versions: the spec's precedence, the same as npm semver on every pair", () => {
  for (const a of ORDERED) {
    for (const b of ORDERED) {
      assert.equal(Math.sign(compareVersions(a, b)), semver.compare(a, b), `${a} vs ${b}`);
    }
  }
  for (let i = 1; i < ORDERED.length; i++) {
    assert.ok(compareVersions(ORDERED[i - 1], ORDERED[i]) < 0, `${ORDERED[i - 1]} < ${ORDERED[i]}`);
  }
});

Deno.test("versions: what is a version agrees with npm semver (strict), build metadata aside", () => {
  const inputs = [
    ...ORDERED,
    "v1.4.0",
    "1.4",
    "1",
    "latest",
    "01.0.0",
    "1.00.0",
    "1.0.0-01",
    "1.0.0-",
    "1.0.0-a..b",
    "1.0.0 ",
    " 1.0.0",
    "=1.0.0",
    "1.0.0+build",
    "1.0.0-rc.1+build",
    "99999999999999999999.0.0",
  ];
  for (const v of inputs) {
    const reference = semver.valid(v) !== null && !v.includes("+") &&
      v.replace(/^v/, "") === semver.valid(v);
    assert.equal(parseVersion(v) !== null, reference, v);
    if (reference) assert.equal(isPrerelease(v), semver.prerelease(v) !== null, v);
  }
  assert.throws(() => compareVersions("1.4", "1.4.0"), TypeError);
});
