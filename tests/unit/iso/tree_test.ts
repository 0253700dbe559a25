import assert from "node:assert/strict";
import { buildTree, type DirNode, MAX_FILE_SIZE, pathComponents } from "../../../src/iso/tree.ts";

const data = new Uint8Array([1]);
const noHostFiles = () => {
  throw new Error("no host files in this test");
};

Deno.test("pathComponents refuses .., ., empty components and absolute paths", () => {
  assert.deepEqual(pathComponents("a/b/c"), ["a", "b", "c"]);
  const cases: [string, string][] = [
    ["../etc/passwd", 'Cannot add "../etc/passwd" to the ISO image: ".." is not allowed in a path'],
    ["a/../b", 'Cannot add "a/../b" to the ISO image: ".." is not allowed in a path'],
    ["./a", 'Cannot add "./a" to the ISO image: "." is not allowed in a path'],
    ["a//b", 'Cannot add "a//b" to the ISO image: an empty component is not allowed in a path'],
    ["a/", 'Cannot add "a/" to the ISO image: an empty component is not allowed in a path'],
    ["/etc/passwd", 'Cannot add "/etc/passwd" to the ISO image: absolute paths are not allowed'],
    ["", "Cannot add an entry with an empty path to the ISO image"],
    ["a\\b", 'Cannot add "a\\b" to the ISO image: NUL and backslash are not allowed in names'],
  ];
  for (const [path, message] of cases) {
    assert.throws(() => pathComponents(path), { code: "iso_invalid_input", message }, path);
  }
});

Deno.test("pathComponents refuses names over 255 bytes and trees deeper than 8", () => {
  assert.throws(() => pathComponents("é".repeat(128)), { code: "iso_invalid_input" });
  assert.doesNotThrow(() => pathComponents("é".repeat(127)));
  assert.doesNotThrow(() => pathComponents("1/2/3/4/5/6/7/8"));
  assert.throws(() => pathComponents("1/2/3/4/5/6/7/8/9"), {
    message:
      'Cannot add "1/2/3/4/5/6/7/8/9" to the ISO image: it is 9 levels deep; ISO 9660 allows 8',
  });
});

Deno.test("buildTree creates parents and keeps explicit directory modes", () => {
  const root = buildTree([
    { path: "a/b/file", data, mode: 0o600 },
    { path: "a", directory: true, mode: 0o700 },
    { path: "empty", directory: true },
  ], noHostFiles);
  const a = root.children.get("a") as DirNode;
  assert.equal(a.mode, 0o700);
  const b = a.children.get("b") as DirNode;
  assert.equal(b.mode, 0o755);
  assert.deepEqual(b.children.get("file"), {
    kind: "file",
    name: "file",
    mode: 0o600,
    size: 1,
    source: { kind: "data", data },
  });
  assert.equal((root.children.get("empty") as DirNode).children.size, 0);
});

Deno.test("buildTree refuses duplicates and file/directory conflicts", () => {
  assert.throws(() => buildTree([{ path: "x", data }, { path: "x", data }], noHostFiles), {
    message: 'Cannot add "x" to the ISO image: the path is listed twice',
  });
  assert.throws(() => buildTree([{ path: "x", data }, { path: "x/y", data }], noHostFiles), {
    message: 'Cannot add "x/y" to the ISO image: "x" is a file',
  });
  assert.throws(() => buildTree([{ path: "x/y", data }, { path: "x", data }], noHostFiles), {
    message: 'Cannot add "x" to the ISO image: it is already a directory',
  });
  assert.throws(
    () => buildTree([{ path: "x", data }, { path: "x", directory: true }], noHostFiles),
    {
      code: "iso_invalid_input",
    },
  );
});

Deno.test("buildTree wants exactly one source and a permission mode", () => {
  assert.throws(() => buildTree([{ path: "x" }], noHostFiles), {
    message: 'Cannot add "x" to the ISO image: give exactly one of data, sourcePath or directory',
  });
  assert.throws(() => buildTree([{ path: "x", data, sourcePath: "/y" }], noHostFiles), {
    code: "iso_invalid_input",
  });
  assert.throws(() => buildTree([{ path: "x", data, mode: 0o10000 }], noHostFiles), {
    message: 'Cannot add "x" to the ISO image: mode 4096 is not a permission value (0 to 0o7777)',
  });
});

Deno.test("buildTree refuses files of 4 GiB or more with iso_too_large", () => {
  assert.doesNotThrow(() => buildTree([{ path: "max", sourcePath: "/m" }], () => MAX_FILE_SIZE));
  assert.throws(() => buildTree([{ path: "big", sourcePath: "/b" }], () => MAX_FILE_SIZE + 1), {
    code: "iso_too_large",
    message:
      'Cannot add "big" to the ISO image: it is 4294967296 bytes; one ISO 9660 extent holds at most 4294967295',
  });
});
