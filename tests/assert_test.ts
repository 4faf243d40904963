/** lib/testing/assert.ts: each assertion passes on good input and throws AssertionError otherwise. */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertExists,
  assertGreater,
  assertGreaterOrEqual,
  assertInstanceOf,
  AssertionError,
  assertLess,
  assertLessOrEqual,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
  fail,
} from "@std/assert";

/** Expects `fn` to throw an AssertionError (checked by hand, not with the module itself). */
function fails(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof AssertionError) return;
    throw new Error(`${what}: threw ${e} instead of an AssertionError`);
  }
  throw new Error(`${what}: did not throw`);
}

Deno.test("passing assertions do not throw", async () => {
  assert(1);
  assertEquals({ a: [1, 2], b: new Uint8Array([3]) }, { a: [1, 2], b: new Uint8Array([3]) });
  assertNotEquals([1], [2]);
  assertStrictEquals(NaN, NaN);
  assertAlmostEquals(0.1 + 0.2, 0.3);
  assertAlmostEquals(1, 1.05, 0.1);
  assertExists(0);
  assertGreater(2, 1);
  assertGreaterOrEqual(2, 2);
  assertLess(1, 2);
  assertLessOrEqual(2, 2);
  assertMatch("abc", /b/);
  assertStringIncludes("abc", "bc");
  assertInstanceOf(new Date(), Date);
  const e = assertThrows(
    () => {
      throw new RangeError("out of range");
    },
    RangeError,
    "range",
  );
  if (e.message !== "out of range") throw new Error("assertThrows must return the error");
  const r = await assertRejects(() => Promise.reject(new TypeError("bad")), TypeError, "ba");
  if (r.message !== "bad") throw new Error("assertRejects must return the error");
});

Deno.test("failing assertions throw AssertionError", async () => {
  fails(() => assert(0), "assert");
  fails(() => assertEquals([1, 2], [1, 3]), "assertEquals");
  fails(() => assertEquals(new Float32Array([1]), new Float32Array([2])), "typed arrays");
  fails(() => assertNotEquals({ a: 1 }, { a: 1 }), "assertNotEquals");
  fails(() => assertStrictEquals({}, {}), "assertStrictEquals");
  fails(() => assertAlmostEquals(1, 1.2, 0.1), "assertAlmostEquals");
  fails(() => assertExists(null), "assertExists");
  fails(() => assertGreater(1, 1), "assertGreater");
  fails(() => assertGreaterOrEqual(1, 2), "assertGreaterOrEqual");
  fails(() => assertLess(2, 2), "assertLess");
  fails(() => assertLessOrEqual(3, 2), "assertLessOrEqual");
  fails(() => assertMatch("abc", /d/), "assertMatch");
  fails(() => assertStringIncludes("abc", "d"), "assertStringIncludes");
  fails(() => assertInstanceOf({}, Date), "assertInstanceOf");
  fails(() => fail("no"), "fail");
  fails(() => assertThrows(() => {}), "assertThrows without a throw");
  fails(() =>
    assertThrows(() => {
      throw new TypeError("x");
    }, RangeError), "assertThrows of the wrong class");
  fails(() =>
    assertThrows(
      () => {
        throw new Error("abc");
      },
      Error,
      "xyz",
    ), "assertThrows with the wrong message");
  let rejected = false;
  try {
    await assertRejects(() => Promise.resolve(1));
  } catch (e) {
    rejected = e instanceof AssertionError;
  }
  if (!rejected) throw new Error("assertRejects must fail when the promise resolves");
});

Deno.test("the message given is part of the failure", () => {
  try {
    assertEquals(1, 2, "custom context");
  } catch (e) {
    if (!(e as Error).message.includes("custom context")) throw e;
    return;
  }
  throw new Error("assertEquals did not throw");
});
