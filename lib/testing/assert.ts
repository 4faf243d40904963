/**
 * A thin stand-in for `jsr:@std/assert`, built on `node:assert/strict`, with std's
 * signatures. JSR is not reachable on the machines this project is developed on; to switch
 * to the real module, point `@std/assert` in `deno.json` at `jsr:@std/assert`.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Error thrown when an assertion fails. */
export class AssertionError extends Error {
  /** Creates an assertion error with the given message. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

function rethrow(e: unknown, msg?: string): never {
  if (e instanceof nodeAssert.AssertionError) {
    throw new AssertionError(msg ? `${msg}: ${e.message}` : e.message);
  }
  throw e;
}

/** Asserts that `expr` is truthy. */
export function assert(
  expr: unknown,
  msg = "Expected expression to be truthy",
): asserts expr {
  if (!expr) throw new AssertionError(msg);
}

/** Fails unconditionally. */
export function fail(msg?: string): never {
  throw new AssertionError(
    msg ? `Failed assertion: ${msg}` : "Failed assertion.",
  );
}

/** Asserts deep equality (structural, like std's `assertEquals`). */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    nodeAssert.deepStrictEqual(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/** Asserts deep inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    nodeAssert.notDeepStrictEqual(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/** Asserts `Object.is(actual, expected)`. */
export function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T {
  try {
    nodeAssert.strictEqual(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/** Asserts `|actual - expected| <= tolerance` (default 1e-7 relative to `expected`, as std). */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance?: number,
  msg?: string,
): void {
  if (Object.is(actual, expected)) return;
  const delta = Math.abs(expected - actual);
  const tol = tolerance ?? Math.abs(expected) * 1e-7;
  if (!(delta <= tol)) {
    const detail =
      `Expected actual: "${actual}" to be close to "${expected}": delta "${delta}" is greater than "${tol}"`;
    throw new AssertionError(msg ? `${msg}: ${detail}` : detail);
  }
}

/** Asserts `actual` is neither `null` nor `undefined`. */
export function assertExists<T>(
  actual: T,
  msg?: string,
): asserts actual is NonNullable<T> {
  if (actual === null || actual === undefined) {
    throw new AssertionError(
      msg ?? `Expected actual: "${actual}" to not be null or undefined.`,
    );
  }
}

function compare(
  ok: boolean,
  actual: unknown,
  op: string,
  expected: unknown,
  msg?: string,
) {
  if (!ok) {
    throw new AssertionError(
      msg ?? `Expect ${String(actual)} ${op} ${String(expected)}`,
    );
  }
}

/** Asserts `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  compare(actual > expected, actual, ">", expected, msg);
}

/** Asserts `actual >= expected`. */
export function assertGreaterOrEqual<T>(
  actual: T,
  expected: T,
  msg?: string,
): void {
  compare(actual >= expected, actual, ">=", expected, msg);
}

/** Asserts `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  compare(actual < expected, actual, "<", expected, msg);
}

/** Asserts `actual <= expected`. */
export function assertLessOrEqual<T>(
  actual: T,
  expected: T,
  msg?: string,
): void {
  compare(actual <= expected, actual, "<=", expected, msg);
}

/** Asserts `actual` matches the regular expression. */
export function assertMatch(
  actual: string,
  expected: RegExp,
  msg?: string,
): void {
  try {
    nodeAssert.match(actual, expected);
  } catch (e) {
    rethrow(e, msg);
  }
}

/** Asserts `actual` contains `expected`. */
export function assertStringIncludes(
  actual: string,
  expected: string,
  msg?: string,
): void {
  if (!actual.includes(expected)) {
    throw new AssertionError(
      msg ?? `Expected actual: "${actual}" to contain: "${expected}".`,
    );
  }
}

/** Asserts `actual` is an instance of `expectedType`. */
export function assertInstanceOf<
  // deno-lint-ignore no-explicit-any
  T extends abstract new (...args: any[]) => any,
>(
  actual: unknown,
  expectedType: T,
  msg?: string,
): asserts actual is InstanceType<T> {
  if (!(actual instanceof expectedType)) {
    throw new AssertionError(
      msg ?? `Expected object to be an instance of "${expectedType.name}".`,
    );
  }
}

// deno-lint-ignore no-explicit-any
type ErrorClass<E extends Error> = abstract new (...args: any[]) => E;

function checkError<E extends Error>(
  err: unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): E {
  const prefix = msg ? `${msg}: ` : "";
  if (ErrorClass && !(err instanceof ErrorClass)) {
    throw new AssertionError(
      `${prefix}Expected error to be instance of "${ErrorClass.name}", but was "${
        (err as Error)?.constructor?.name
      }": ${(err as Error)?.message}`,
    );
  }
  if (
    msgIncludes !== undefined &&
    !String((err as Error)?.message).includes(msgIncludes)
  ) {
    throw new AssertionError(
      `${prefix}Expected error message to include "${msgIncludes}", but got "${
        (err as Error)?.message
      }".`,
    );
  }
  return err as E;
}

/** Asserts that `fn` throws; optionally of a class and with a message substring. Returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): E {
  try {
    fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes, msg);
  }
  throw new AssertionError(
    `${msg ? `${msg}: ` : ""}Expected function to throw.`,
  );
}

/** Asserts that the promise returned by `fn` rejects; optionally of a class and message. */
export async function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: ErrorClass<E>,
  msgIncludes?: string,
  msg?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    return checkError(e, ErrorClass, msgIncludes, msg);
  }
  throw new AssertionError(
    `${msg ? `${msg}: ` : ""}Expected function to reject.`,
  );
}
