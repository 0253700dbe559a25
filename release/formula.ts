/**
 * `deno task release:formula --version V --base-url URL --sums SHA256SUMS --out emu.rb
 * [--homepage URL]`: renders the Homebrew formula for release V.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseSha256Sums } from "../src/artifact/sha256sums.ts";
import { renderFormula } from "./lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    version: { type: "string" },
    "base-url": { type: "string" },
    sums: { type: "string" },
    out: { type: "string" },
    homepage: { type: "string" },
  },
});
if (!values.version || !values["base-url"] || !values.sums || !values.out) {
  console.error(
    "usage: deno task release:formula --version V --base-url URL --sums SHA256SUMS --out emu.rb [--homepage URL]",
  );
  Deno.exit(2);
}
const sums = parseSha256Sums(await Deno.readTextFile(values.sums));
await Deno.writeTextFile(
  values.out,
  renderFormula({
    version: values.version,
    baseUrl: values["base-url"],
    homepage: values.homepage ?? values["base-url"].replace(/\/releases\/download\/.*$/, ""),
    sums,
  }),
);
console.log(`formula: ${values.out}`);
