/**
 * A small schema language for JSON configs: each field says its type, range and allowed
 * values, and {@link validate} returns every problem with its dotted path, the nearest valid
 * name for a misspelt key, and what the field accepts. Nothing is silently ignored.
 *
 * ```ts
 * import { validate, object, int, oneOf } from "./schema.ts";
 * const schema = object({ pixels: int({ min: 8 }), mode: oneOf(["bin", "lsa"]) });
 * validate(schema, { pixel: 50 }, "config"); // ['config.pixel: unknown key; did you mean "pixels"?']
 * ```
 *
 * @module
 */

/** One field's rule. */
export type Schema =
  | { kind: "number"; integer: boolean; min?: number; max?: number; exclusiveMin?: boolean }
  | { kind: "string"; pattern?: RegExp; describe?: string }
  | { kind: "boolean" }
  | { kind: "enum"; values: readonly (string | number | boolean | null)[] }
  | { kind: "array"; of: Schema; minLength?: number; unique?: boolean }
  | { kind: "object"; fields: Readonly<Record<string, Schema>>; doc?: string }
  | { kind: "record"; of: Schema; keys?: (key: string) => string | undefined }
  | { kind: "union"; options: readonly Schema[] }
  | { kind: "any" };

/** A number, optionally an integer within a range. */
export function num(
  range: { min?: number; max?: number; exclusiveMin?: boolean } = {},
): Schema {
  return { kind: "number", integer: false, ...range };
}

/** An integer within a range. */
export function int(range: { min?: number; max?: number } = {}): Schema {
  return { kind: "number", integer: true, ...range };
}

/** A string, optionally matching `pattern` (described by `describe` in errors). */
export function str(pattern?: RegExp, describe?: string): Schema {
  return { kind: "string", pattern, describe };
}

/** `true` or `false`. */
export const bool: Schema = { kind: "boolean" };

/** Anything (validated elsewhere). */
export const any: Schema = { kind: "any" };

/** One of the listed values. */
export function oneOf(values: readonly (string | number | boolean | null)[]): Schema {
  return { kind: "enum", values };
}

/** An array of `of`. */
export function arrayOf(
  of: Schema,
  options: { minLength?: number; unique?: boolean } = {},
): Schema {
  return { kind: "array", of, ...options };
}

/** An object with exactly these (optional) fields. */
export function object(fields: Record<string, Schema>): Schema {
  return { kind: "object", fields };
}

/** An object whose keys are free (checked by `keys`, which returns an error or undefined). */
export function record(of: Schema, keys?: (key: string) => string | undefined): Schema {
  return { kind: "record", of, keys };
}

/** Any of the options. */
export function union(...options: Schema[]): Schema {
  return { kind: "union", options };
}

/** Levenshtein distance (small strings). */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j];
      row[j] = Math.min(
        row[j] + 1,
        row[j - 1] + 1,
        previous + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1),
      );
      previous = saved;
    }
  }
  return row[b.length];
}

/** The candidate nearest to `name` (by edit distance), when it is near enough to be a typo. */
export function nearest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3))
    ? best
    : undefined;
}

/** What a schema accepts, in words. */
export function describeSchema(schema: Schema): string {
  switch (schema.kind) {
    case "number": {
      const what = schema.integer ? "an integer" : "a number";
      const lo = schema.min !== undefined
        ? ` ${schema.exclusiveMin ? ">" : "≥"} ${schema.min}`
        : "";
      const hi = schema.max !== undefined ? ` ≤ ${schema.max}` : "";
      return `${what}${lo}${lo && hi ? " and" : ""}${hi}`;
    }
    case "string":
      return schema.describe ?? "a string";
    case "boolean":
      return "true or false";
    case "enum":
      return `one of ${schema.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "array":
      return `an array of ${describeSchema(schema.of).replace(/^(a|an) /, "")}s`.replace(
        /ss$/,
        "s",
      );
    case "object":
      return `an object with keys ${Object.keys(schema.fields).join(", ")}`;
    case "record":
      return "an object";
    case "union":
      return schema.options.map(describeSchema).join(", or ");
    case "any":
      return "anything";
  }
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/** Problems of `value` against `schema`, each prefixed with its path (empty when valid). */
export function validate(schema: Schema, value: unknown, path: string): string[] {
  const wrong = () => [`${path}: expected ${describeSchema(schema)}, got ${typeName(value)}`];
  switch (schema.kind) {
    case "any":
      return [];
    case "boolean":
      return typeof value === "boolean" ? [] : wrong();
    case "string":
      if (typeof value !== "string") return wrong();
      return schema.pattern && !schema.pattern.test(value) ? wrong() : [];
    case "enum":
      if (schema.values.includes(value as string)) return [];
      if (typeof value === "string") {
        const near = nearest(value, schema.values.filter((v) => typeof v === "string") as string[]);
        if (near) return [`${wrong()[0]}; did you mean ${JSON.stringify(near)}?`];
      }
      return wrong();
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) return wrong();
      if (schema.integer && !Number.isInteger(value)) return wrong();
      if (schema.min !== undefined) {
        if (schema.exclusiveMin ? value <= schema.min : value < schema.min) return wrong();
      }
      if (schema.max !== undefined && value > schema.max) return wrong();
      return [];
    }
    case "array": {
      if (!Array.isArray(value)) return wrong();
      const errors = value.flatMap((v, i) => validate(schema.of, v, `${path}[${i}]`));
      if (schema.minLength !== undefined && value.length < schema.minLength) {
        errors.push(`${path}: needs at least ${schema.minLength} element(s)`);
      }
      if (schema.unique && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) {
        errors.push(`${path}: values must be distinct`);
      }
      return errors;
    }
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return wrong();
      const names = Object.keys(schema.fields);
      const errors: string[] = [];
      for (const [key, v] of Object.entries(value)) {
        const field = schema.fields[key];
        if (!field) {
          const near = nearest(key, names);
          errors.push(
            `${path}.${key}: unknown key` +
              (near ? `; did you mean "${near}"?` : `; valid keys: ${names.join(", ")}`),
          );
          continue;
        }
        if (v === undefined) continue;
        errors.push(...validate(field, v, `${path}.${key}`));
      }
      return errors;
    }
    case "record": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return wrong();
      return Object.entries(value).flatMap(([key, v]) => {
        const keyError = schema.keys?.(key);
        return keyError
          ? [`${path}.${key}: ${keyError}`]
          : validate(schema.of, v, `${path}.${key}`);
      });
    }
    case "union": {
      const results = schema.options.map((o) => validate(o, value, path));
      if (results.some((r) => r.length === 0)) return [];
      // The option of the same JSON type explains best; else list them all.
      const sameType = schema.options.findIndex((o) => matchesType(o, value));
      return sameType >= 0 ? results[sameType] : wrong();
    }
  }
}

function matchesType(schema: Schema, value: unknown): boolean {
  switch (schema.kind) {
    case "number":
      return typeof value === "number";
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "array":
      return Array.isArray(value);
    case "object":
    case "record":
      return typeof value === "object" && value !== null && !Array.isArray(value);
    default:
      return false;
  }
}

/** The schema of the field at dotted `path` (e.g. `data.trainSize`), or undefined. */
export function fieldAt(schema: Schema, path: string): Schema | undefined {
  let current: Schema | undefined = schema;
  for (const part of path.split(".")) {
    if (!current) return undefined;
    if (current.kind === "object") current = current.fields[part];
    else if (current.kind === "union") {
      current = current.options.map((o) => fieldAt(o, part)).find((s) => s !== undefined);
    } else return undefined;
  }
  return current;
}

/** Every dotted path of an object schema's leaves and sub-objects. */
export function fieldPaths(schema: Schema, prefix = ""): string[] {
  if (schema.kind !== "object") return [];
  return Object.entries(schema.fields).flatMap(([key, field]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...fieldPaths(field, path)];
  });
}
