import assert from "node:assert/strict";
import {
  archiveName,
  artifactName,
  compareVersions,
  targetTriple,
} from "../../../src/update/target.ts";
import { replaceRefusal } from "../../../src/update/upgrade.ts";

Deno.test("target: the five release targets and nothing else", () => {
  assert.equal(targetTriple("linux", "x86_64"), "x86_64-unknown-linux-gnu");
  assert.equal(targetTriple("linux", "aarch64"), "aarch64-unknown-linux-gnu");
  assert.equal(targetTriple("darwin", "x86_64"), "x86_64-apple-darwin");
  assert.equal(targetTriple("darwin", "aarch64"), "aarch64-apple-darwin");
  assert.equal(targetTriple("windows", "x86_64"), "x86_64-pc-windows-msvc");
  assert.equal(targetTriple("windows", "aarch64"), null);
  assert.equal(targetTriple("freebsd", "x86_64"), null);
  assert.equal(artifactName("aarch64-apple-darwin"), "emu-aarch64-apple-darwin");
  assert.equal(archiveName("x86_64-unknown-linux-gnu"), "emu-x86_64-unknown-linux-gnu.tar.gz");
  assert.equal(archiveName("x86_64-pc-windows-msvc"), "emu-x86_64-pc-windows-msvc.zip");
});

Deno.test("target: versions compare numerically; pre-releases before their release", () => {
  const sorted = [
    "0.9.0",
    "1.0.0-rc.1",
    "1.0.0-rc.2",
    "1.0.0-rc.10",
    "1.0.0",
    "v1.0.1",
    "1.2.0",
    "1.10.0",
  ];
  for (let i = 1; i < sorted.length; i++) {
    assert.ok(compareVersions(sorted[i], sorted[i - 1]) > 0, `${sorted[i]} > ${sorted[i - 1]}`);
    assert.ok(compareVersions(sorted[i - 1], sorted[i]) < 0);
  }
  assert.equal(compareVersions("v1.4.0", "1.4.0"), 0);
  assert.ok(compareVersions("1.0.0-rc-1", "1.0.0-rc-2") < 0, "rc-1 and rc-2 are not equal");
  assert.throws(() => compareVersions("1.4", "1.4.0"), TypeError);
});

Deno.test("upgrade: Homebrew installs and deno itself are never replaced", () => {
  assert.match(replaceRefusal("/opt/homebrew/Cellar/emu/1.4.0/bin/emu")!.message, /Homebrew/);
  assert.equal(
    replaceRefusal("/opt/homebrew/Cellar/emu/1.4.0/bin/emu")!.hint,
    "Run `brew upgrade emu`.",
  );
  assert.match(replaceRefusal("/usr/local/bin/deno")!.message, /deno run/);
  assert.equal(replaceRefusal("/home/u/.emu/bin/emu"), null);
});
