/**
 * Small helpers for validating parsed JSON field by field. Each failure is a
 * {@linkcode FieldError} naming the field by its dotted path (`ports.api.host`,
 * `health[0].status`), which the profile loader turns into one clear line.
 *
 * @module
 */

/** A validation failure at one field. */
export class FieldError extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`${field}: ${problem}`);
    this.name = "FieldError";
  }
}

/** A JSON object: what `JSON.parse` gives for `{…}`. */
export type JsonObject = Record<string, unknown>;

/** Path of a child field: `join("ports", "api")` → `ports.api`, `join("health", 0)` → `health[0]`. */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** Describes a JSON value for an error message: `"abc"`, `70000`, `an array`, `null`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  return String(value);
}

/** Requires a JSON object whose keys are all in `allowed`, suggesting the closest name. */
export function objectWithKeys(
  value: unknown,
  field: string,
  allowed: readonly string[],
): JsonObject {
  const obj = object(value, field);
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const near = closest(key, allowed);
      const suggestion = near === undefined ? "" : ` (did you mean "${near}"?)`;
      throw new FieldError(
        fieldPath(field, key),
        `unknown field${suggestion}; allowed here: ${allowed.join(", ")}`,
      );
    }
  }
  return obj;
}

/** Requires a JSON object (not an array, not null). */
export function object(value: unknown, field: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FieldError(field || "(top level)", `must be an object, got ${describe(value)}`);
  }
  return value as JsonObject;
}

/** Requires a non-empty string, optionally matching `pattern` (explained by `rule`). */
export function string(value: unknown, field: string, pattern?: RegExp, rule?: string): string {
  if (typeof value !== "string") {
    throw new FieldError(field, `must be a string, got ${describe(value)}`);
  }
  if (value === "") throw new FieldError(field, "must not be empty");
  if (pattern !== undefined && !pattern.test(value)) {
    throw new FieldError(field, `${rule ?? `must match ${pattern}`}, got ${describe(value)}`);
  }
  return value;
}

/** Requires an integer in `[min, max]`. */
export function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new FieldError(field, `must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/** Like {@linkcode integer}, for TCP ports. */
export function port(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new FieldError(
      field,
      `must be a TCP port (an integer from 1 to 65535), got ${describe(value)}`,
    );
  }
  return value;
}

/** Requires an array. */
export function array(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new FieldError(field, `must be an array, got ${describe(value)}`);
  }
  return value;
}

/** The entry of `candidates` within edit distance 2 of `name`, if exactly one is nearest. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length];
}
