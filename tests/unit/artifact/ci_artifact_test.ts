import assert from "node:assert/strict";
import { type ApiArtifact, chooseImageArtifact } from "../../../src/artifact/ci_artifact.ts";

const a = (id: number, name: string, expired = false): ApiArtifact => ({
  id,
  name,
  expired,
  archive_download_url: `https://x/${id}`,
});

Deno.test("ci artifact: the image for the architecture, else the one image, else the only one", () => {
  const both = [a(1, "logs"), a(2, "stack-image-amd64"), a(3, "stack-image-arm64")];
  assert.equal(chooseImageArtifact(both, "x86_64")?.id, 2);
  assert.equal(chooseImageArtifact(both, "aarch64")?.id, 3);
  assert.equal(chooseImageArtifact([a(1, "logs"), a(2, "qcow2")], "x86_64")?.id, 2);
  assert.equal(chooseImageArtifact([a(5, "build")], "aarch64")?.id, 5);
  assert.equal(chooseImageArtifact([a(1, "logs"), a(2, "coverage")], "x86_64"), null);
  assert.equal(chooseImageArtifact([a(2, "image-amd64", true)], "x86_64"), null, "expired");
  assert.equal(chooseImageArtifact([], "x86_64"), null);
});
