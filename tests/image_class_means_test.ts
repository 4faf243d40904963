import { assertEquals, assertThrows } from "@std/assert";
import { classMeanImages } from "../lib/image/mod.ts";

Deno.test("classMeanImages: hand-computed means per label and their difference", () => {
  // Three 1×2 images: labels 0, 1, 0.
  const images = {
    data: Float32Array.from([1, 2, 10, 20, 3, 6]),
    shape: [3, 1, 2] as [number, number, number],
  };
  const means = classMeanImages(images, Uint8Array.from([0, 1, 0]));
  assertEquals(Array.from(means.negative.data), [2, 4]);
  assertEquals(Array.from(means.positive.data), [10, 20]);
  assertEquals(Array.from(means.difference.data), [8, 16]);
  assertEquals(means.difference.shape, [1, 2]);
});

Deno.test("classMeanImages: a missing class and mismatched labels are errors", () => {
  const images = { data: new Float32Array(4), shape: [2, 1, 2] as [number, number, number] };
  assertThrows(() => classMeanImages(images, Uint8Array.from([1, 1])), Error, "each label");
  assertThrows(() => classMeanImages(images, Uint8Array.from([1])), Error, "2 images but 1 labels");
});
