import assert from "node:assert/strict";
import {
  isoDirName,
  isoFileName,
  jolietName,
  uniqueIdentifiers,
  volumeLabel,
} from "../../../src/iso/names.ts";

Deno.test("isoFileName: upper-case d-characters, NAME.EXT;1, level-2 lengths", () => {
  assert.equal(isoFileName("user-data"), "USER_DATA.;1");
  assert.equal(isoFileName("meta-data"), "META_DATA.;1");
  assert.equal(isoFileName("runtime.env"), "RUNTIME.ENV;1");
  assert.equal(isoFileName("archive.tar.gz"), "ARCHIVE_TAR.GZ;1");
  assert.equal(isoFileName(".hidden"), "_HIDDEN.;1");
  assert.equal(isoFileName("café.txt"), "CAF_.TXT;1");
  assert.equal(isoFileName("x.verylongextension"), "X.VERYLONG;1");
  const long = isoFileName("a".repeat(40) + ".conf");
  assert.equal(long, "A".repeat(26) + ".CONF;1");
  assert.equal(long.length - ";1".length - ".".length, 30);
});

Deno.test("isoFileName: a clash suffix stays inside the 30-character limit", () => {
  assert.equal(isoFileName("a".repeat(40) + ".conf", 12), "A".repeat(23) + "_12.CONF;1");
  assert.equal(isoFileName("user-data", 1), "USER_DATA_1.;1");
});

Deno.test("isoDirName: d-characters, no dot, at most 31", () => {
  assert.equal(isoDirName("etc"), "ETC");
  assert.equal(isoDirName("dir.one"), "DIR_ONE");
  assert.equal(isoDirName("d".repeat(40)), "D".repeat(31));
  assert.equal(isoDirName("d".repeat(40), 3), "D".repeat(29) + "_3");
});

Deno.test("uniqueIdentifiers resolves clashes in order, deterministically", () => {
  const names = ["USER-DATA", "user-data", "user_data"];
  const ids = uniqueIdentifiers(names, isoFileName);
  assert.deepEqual(ids, ["USER_DATA.;1", "USER_DATA_1.;1", "USER_DATA_2.;1"]);
  assert.deepEqual(uniqueIdentifiers(names, isoFileName), ids);
  // A generated suffix that collides with a real name moves on to the next one.
  assert.deepEqual(uniqueIdentifiers(["a-1", "a_1", "a-b", "a_b"], isoFileName), [
    "A_1.;1",
    "A_1_1.;1",
    "A_B.;1",
    "A_B_1.;1",
  ]);
  assert.deepEqual(uniqueIdentifiers(["x", "x"], jolietName), ["x", "x~1"]);
});

Deno.test("jolietName: at most 64 UTF-16 units, surrogate pairs never split", () => {
  assert.equal(jolietName("user-data"), "user-data");
  assert.equal(jolietName("a".repeat(64)), "a".repeat(64));
  assert.equal(jolietName("a".repeat(65)), "a".repeat(64));
  assert.equal(jolietName("a".repeat(63) + "😀"), "a".repeat(63));
  assert.equal(jolietName("a".repeat(62) + "😀"), "a".repeat(62) + "😀");
  assert.equal(jolietName("a".repeat(70), 1), "a".repeat(62) + "~1");
  assert.equal(jolietName("a".repeat(61) + "😀x", 1), "a".repeat(61) + "~1");
});

Deno.test("volumeLabel: upper-cased for ISO, case kept and cut to 16 for Joliet", () => {
  assert.deepEqual(volumeLabel("cidata"), { iso: "CIDATA", joliet: "cidata" });
  assert.deepEqual(volumeLabel("EMUCFG"), { iso: "EMUCFG", joliet: "EMUCFG" });
  assert.deepEqual(volumeLabel("a_very_long_label_for_a_disc_32c"), {
    iso: "A_VERY_LONG_LABEL_FOR_A_DISC_32C",
    joliet: "a_very_long_labe",
  });
});

Deno.test("volumeLabel: bad characters and lengths are refused by name", () => {
  assert.throws(() => volumeLabel("my disk"), {
    code: "iso_invalid_input",
    message: 'Cannot use volume label "my disk": character " " is not allowed',
  });
  assert.throws(() => volumeLabel("cloud-init"), {
    message: 'Cannot use volume label "cloud-init": character "-" is not allowed',
  });
  assert.throws(() => volumeLabel("é"), {
    message: 'Cannot use volume label "é": character "é" is not allowed',
  });
  assert.throws(() => volumeLabel(""), {
    message: 'Cannot use volume label "": it must be 1 to 32 characters',
  });
  assert.throws(() => volumeLabel("x".repeat(33)), { code: "iso_invalid_input" });
});
