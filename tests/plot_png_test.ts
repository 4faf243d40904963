/**
 * lib/plot PNG images and tables: pixel values of colour-mapped PNGs decoded back, known
 * colour-scheme end points, the PNG MIME bundle, Markdown tables.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { decode } from "fast-png";
import { Buffer } from "node:buffer";
import {
  colorLookup,
  imageAt,
  imageToPng,
  jupyterDisplay,
  PngImage,
  rgbImageToPng,
  table,
} from "../lib/plot/mod.ts";

Deno.test("imageToPng: gray scale maps min → 0 and max → 255, nearest upsampling", () => {
  // 2×3 image, values 0..1 by hand; domain defaults to [min, max] = [0, 1].
  const image = { data: [0, 0.5, 1, 1, 0.25, 0], shape: [2, 3] as const };
  const png = imageToPng(image, { scale: 2 });
  assertEquals([png.width, png.height], [6, 4]);
  const decoded = decode(png.bytes);
  assertEquals([decoded.width, decoded.height, decoded.channels], [6, 4, 1], "8-bit gray");
  const red = (x: number, y: number) => decoded.data[y * 6 + x];
  // Each source pixel covers a 2×2 block.
  assertEquals([red(0, 0), red(1, 1), red(2, 0), red(4, 1), red(0, 2), red(2, 3), red(5, 3)], [
    0,
    0,
    128,
    255,
    255,
    64,
    0,
  ]);
  // An explicit domain clamps: values above the top are white.
  const clamped = decode(imageToPng(image, { domain: [0, 0.5], scale: 1 }).bytes);
  assertEquals(Array.from(clamped.data), [0, 255, 255, 255, 128, 0]);
  // A colour scheme gives RGB; its low end is the scheme's first colour.
  const colored = decode(imageToPng(image, { scheme: "viridis", scale: 1 }).bytes);
  assertEquals(colored.channels, 3);
  assertEquals(Array.from(colored.data.subarray(0, 3)), [0x44, 0x01, 0x54]);
  assertThrows(() => imageToPng({ data: [1, 2, 3], shape: [2, 2] }), Error, "shape");
});

Deno.test("colour schemes: viridis and rdbu end points are the published colours", () => {
  const viridis = colorLookup("viridis");
  // Viridis runs from #440154 to #fde725.
  assertEquals(Array.from(viridis.subarray(0, 3)), [0x44, 0x01, 0x54]);
  assertEquals(Array.from(viridis.subarray(765, 768)), [0xfd, 0xe7, 0x25]);
  const rdbu = colorLookup("rdbu");
  // ColorBrewer RdBu: dark red #67001f to dark blue #053061.
  assertEquals(Array.from(rdbu.subarray(0, 3)), [0x67, 0x00, 0x1f]);
  assertEquals(Array.from(rdbu.subarray(765, 768)), [0x05, 0x30, 0x61]);
});

Deno.test("PngImage: display bundle is base64 PNG, save writes the bytes", async () => {
  const batch = {
    data: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
    shape: [2, 2, 2] as [
      number,
      number,
      number,
    ],
  };
  const second = imageAt(batch, 1);
  assertEquals(Array.from(second.data), [4, 5, 6, 7]);
  const png = imageToPng(second, { scheme: "magma" });
  assert(png instanceof PngImage);
  const bundle = png[jupyterDisplay]();
  assertEquals(Object.keys(bundle), ["image/png"]);
  const bytes = Buffer.from(bundle["image/png"], "base64");
  assertEquals(Array.from(bytes.subarray(0, 8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert(png.dataUrl().startsWith("data:image/png;base64,"));
  const wrapped = PngImage.fromBytes(png.bytes);
  assertEquals([wrapped.width, wrapped.height], [png.width, png.height]);
  assertThrows(() => PngImage.fromBytes(new Uint8Array(30)), Error, "not a PNG");
  const dir = await Deno.makeTempDir();
  try {
    await png.save(`${dir}/a/b.png`);
    assertEquals(await Deno.readFile(`${dir}/a/b.png`), png.bytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("table: Markdown with right-aligned numbers, escaped pipes, plain-text fallback", () => {
  const t = table([
    { model: "VGG19 | slice", accuracy: 0.81234, n: 500 },
    { model: "logistic regression", accuracy: 0.86, n: 500, note: "baseline" },
  ], { decimals: 3, title: "Results" });
  assertEquals(
    t.markdown(),
    "**Results**\n\n" +
      "| model | accuracy | n | note |\n" +
      "| --- | ---: | ---: | --- |\n" +
      "| VGG19 \\| slice | 0.812 | 500 |  |\n" +
      "| logistic regression | 0.860 | 500 | baseline |\n",
  );
  const bundle = t[jupyterDisplay]();
  assertEquals(Object.keys(bundle).sort(), ["text/markdown", "text/plain"]);
  assert(bundle["text/plain"].split("\n")[1].startsWith("model"));
});

Deno.test("rgbImageToPng: [0, 1] RGB to 8-bit, clamped, upsampled", () => {
  const image = { data: [0, 0.5, 1, 2, -1, 0.25], shape: [1, 2, 3] as const };
  const png = decode(rgbImageToPng(image, { scale: 2 }).bytes);
  assertEquals([png.width, png.height, png.channels], [4, 2, 3]);
  assertEquals(Array.from(png.data.subarray(0, 12)), [
    0,
    128,
    255,
    0,
    128,
    255,
    255,
    0,
    64,
    255,
    0,
    64,
  ]);
  assertThrows(() => rgbImageToPng({ data: [1, 2], shape: [1, 1, 3] }), Error, "RGB");
});
