/**
 * The JSON Schema of `emu.json` (`docs/emu.schema.json`), converted from the profile's
 * declaration. Apart from `profile.ts` because only `deno task docs` and the tests need
 * the converter: emu itself never loads it.
 *
 * @module
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import { ProfileSchema } from "./profile.ts";

/** The JSON Schema (draft 2020-12) of `emu.json`. */
export function profileJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://github.com/OWNER/emu/blob/main/docs/emu.schema.json",
    title: "emu.json",
    ...toJsonSchema(ProfileSchema, { errorMode: "ignore", target: "draft-2020-12" }),
  };
}
