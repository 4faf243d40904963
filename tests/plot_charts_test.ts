/**
 * lib/plot charts: each SVG is well-formed XML (checked by Python's XML parser), has the
 * expected number of marks for hand-made data, its axis labels and title, and the display
 * method returns the right MIME bundle.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { DOMParser } from "linkedom";
import { decode } from "fast-png";
import { Buffer } from "node:buffer";
import {
  barChart,
  confusionMatrix,
  featureMapChannels,
  featureMapGrid,
  type Figure,
  heatmap,
  histogram,
  imageGrid,
  interactiveSpecs,
  intervalChart,
  jupyterDisplay,
  lineChart,
  scatter,
  trainingCurves,
} from "../lib/plot/mod.ts";

// deno-lint-ignore no-explicit-any
type Node = any;

function parse(figure: Figure): Node {
  const doc = new DOMParser().parseFromString(figure.svg, "image/svg+xml");
  assertEquals(doc.documentElement.tagName, "svg");
  assertEquals(doc.documentElement.getAttribute("xmlns"), "http://www.w3.org/2000/svg");
  return doc;
}

/**
 * Elements `tag` inside the mark groups Plot labels `mark` (e.g. "dot", "rect") of the chart
 * itself: the last part of a composed figure (title and legend come first).
 */
function marks(doc: Node, mark: string, tag: string): Node[] {
  const root = doc.documentElement;
  const parts = [...root.children].filter((child: Node) => child.tagName === "svg");
  const chart = parts.length > 0 ? parts[parts.length - 1] : root;
  return [...chart.querySelectorAll(`g[aria-label="${mark}"] ${tag}`)];
}

/** Elements `tag` in mark groups `mark` of every part (for charts stacked in rows). */
function marksAll(doc: Node, mark: string, tag: string): Node[] {
  return [...doc.querySelectorAll(`g[aria-label="${mark}"] ${tag}`)];
}

function texts(doc: Node): string[] {
  return [...doc.querySelectorAll("text")].map((t: Node) => t.textContent.trim());
}

function hasText(doc: Node, pattern: string): boolean {
  return texts(doc).some((t) => t.includes(pattern));
}

const made: Figure[] = [];
function keep(figure: Figure): Figure {
  made.push(figure);
  return figure;
}

Deno.test("histogram: one rect per non-empty bin and group, heights proportional to counts", () => {
  // Edges 0..5, bins half-open [a, b): [0,1) [1,2) [2,3) [3,4) [4,5) hold 2, 2, 1, 0, 2.
  const values = [0, 0.5, 1.5, 1.6, 2.5, 4.5, 4.99];
  const figure = keep(histogram(values, {
    thresholds: [0, 1, 2, 3, 4, 5],
    xLabel: "review length",
    yLabel: "reviews",
    title: "Lengths",
  }));
  const doc = parse(figure);
  const rects = marks(doc, "rect", "rect");
  assertEquals(rects.length, 4, "the empty bin [3,4) draws nothing");
  const byX = rects
    .map((r: Node) => ({ x: Number(r.getAttribute("x")), h: Number(r.getAttribute("height")) }))
    .sort((a, b) => a.x - b.x);
  const unit = byX[2].h; // the bin holding one value
  assertEquals(byX.map((r) => Math.round(r.h / unit)), [2, 2, 1, 2]);
  assert(hasText(doc, "review length"), "x label");
  assert(hasText(doc, "reviews"), "y label");
  assert(hasText(doc, "Lengths"), "title");

  // Stacked by label: neg holds bins 0,1,2 once each; pos holds bins 0,1 once and 4 twice.
  const grouped = keep(histogram(values, {
    thresholds: [0, 1, 2, 3, 4, 5],
    groups: [0, 1, 0, 1, 0, 1, 1],
    groupNames: ["negative", "positive"],
  }));
  const groupedDoc = parse(grouped);
  assertEquals(marks(groupedDoc, "rect", "rect").length, 6);
  assert(hasText(groupedDoc, "negative") && hasText(groupedDoc, "positive"), "legend names");
  const spec = interactiveSpecs(grouped)[0];
  assertEquals(spec.data.length, 2);
  assertEquals(
    spec.data.reduce((n, trace) => n + (trace.x as number[]).length, 0),
    values.length,
  );
});

Deno.test("scatter: one circle per point, one path per polygon, colours by group", () => {
  const n = 57;
  const x = Array.from({ length: n }, (_, i) => Math.cos(i));
  const y = Array.from({ length: n }, (_, i) => Math.sin(2 * i));
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 3 === 0 ? 1 : 0);
  const figure = keep(scatter({ x, y }, {
    groups: labels,
    groupNames: ["negative", "positive"],
    colors: { negative: "#ff0000", positive: "#0000ff" },
    polygons: [
      { name: "convex hull", points: { data: [-1, -1, 1, -1, 1, 1], shape: [3, 2] } },
      { name: "bounding rectangle", points: [[-1, -1], [1, -1], [1, 1], [-1, 1]] },
    ],
    xLabel: "t-SNE 1",
    yLabel: "t-SNE 2",
    equalAspect: true,
  }));
  const doc = parse(figure);
  const circles = marks(doc, "dot", "circle");
  assertEquals(circles.length, n);
  const blue = circles.filter((c: Node) => c.getAttribute("fill") === "#0000ff").length;
  assertEquals(blue, labels.reduce((a, b) => a + b, 0));
  assertEquals(marks(doc, "line", "path").length, 2);
  assert(hasText(doc, "t-SNE 1") && hasText(doc, "t-SNE 2"), "axis labels");
  assert(hasText(doc, "convex hull") && hasText(doc, "bounding rectangle"), "legend");

  // A [n, 2] matrix gives the same points.
  const data = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) [data[2 * i], data[2 * i + 1]] = [x[i], y[i]];
  const fromMatrix = parse(keep(scatter({ data, shape: [n, 2] })));
  assertEquals(marks(fromMatrix, "dot", "circle").length, n);
  assertThrows(() => scatter({ data, shape: [n, 2] }, { groups: [1, 0] }), Error, "groups");
});

Deno.test("heatmap: one rect per cell, row 0 on top, colour ends at the domain ends", () => {
  const rows = 7;
  const columns = 11;
  const data = Float32Array.from({ length: rows * columns }, (_, i) => i);
  const figure = keep(heatmap({ data, shape: [rows, columns] }, {
    scheme: "gray",
    xLabel: "pixel column",
    yLabel: "pixel row",
    legendLabel: "features per pixel",
  }));
  const doc = parse(figure);
  const cells = marks(doc, "cell", "rect");
  assertEquals(cells.length, rows * columns);
  // Cells are drawn in data order: first = row 0 col 0 (value 0 → black), last = max → white.
  assertEquals(cells[0].getAttribute("fill"), "rgb(0, 0, 0)");
  assertEquals(cells[cells.length - 1].getAttribute("fill"), "rgb(255, 255, 255)");
  const yOf = (cell: Node) => Number(cell.getAttribute("y"));
  assert(yOf(cells[0]) < yOf(cells[columns]), "row 0 is above row 1");
  assert(hasText(doc, "pixel column") && hasText(doc, "pixel row"), "axis labels");
  assert(hasText(doc, "features per pixel"), "legend label");

  // Diverging: symmetric domain, the zero cell is the scheme's midpoint (near white for rdbu).
  const signed = keep(heatmap({ data: [-2, 0, 1, 2], shape: [2, 2] }, { diverging: true }));
  const signedCells = marks(parse(signed), "cell", "rect");
  const mid = signedCells[1].getAttribute("fill") as string;
  const channels = mid.match(/\d+/g)!.map(Number);
  assert(channels.every((c) => c > 220), `zero maps to a light colour, got ${mid}`);
  assertThrows(() => heatmap({ data: [1, 2, 3], shape: [2, 2] }), Error, "shape");
});

Deno.test("confusion matrix: four cells with their counts printed", () => {
  const doc = parse(keep(confusionMatrix([[40, 10], [5, 45]], ["negative", "positive"])));
  assertEquals(marks(doc, "cell", "rect").length, 4);
  const printed = marks(doc, "text", "text").map((t: Node) => t.textContent.trim());
  assertEquals(printed, ["40", "10", "5", "45"]);
  assert(hasText(doc, "predicted") && hasText(doc, "true"), "axis labels");
  const rates = parse(keep(confusionMatrix([[40, 10], [5, 45]], ["neg", "pos"], {
    normalize: true,
  })));
  assertEquals(
    marks(rates, "text", "text").map((t: Node) => t.textContent.trim()),
    ["0.800", "0.200", "0.100", "0.900"],
  );
});

Deno.test("bar chart: one bar per row, one interval rule per row with bounds", () => {
  const bars = [
    { label: "VGG19 slice + CNN", value: 0.81, low: 0.79, high: 0.83, group: "image" },
    { label: "logistic regression", value: 0.86, low: 0.84, high: 0.88, group: "baseline" },
    { label: "majority class", value: 0.5, group: "baseline" },
  ];
  const doc = parse(keep(barChart(bars, { xLabel: "accuracy", reference: 0.5, title: "Acc" })));
  assertEquals(marks(doc, "bar", "rect").length, 3);
  assertEquals(marks(doc, "rule", "line").length, 2 + 1 + 1, "2 intervals, baseline, reference");
  assertEquals(marks(doc, "tick", "line").length, 4, "interval end ticks");
  assert(hasText(doc, "accuracy") && hasText(doc, "logistic regression"), "labels");
  assert(hasText(doc, "0.860"), "values printed");
  assertThrows(() => barChart([bars[0], bars[0]]), Error, "unique");
});

Deno.test("interval chart: a rule, two ticks and a dot per row, one small dot per point", () => {
  const rows = [
    { label: "intact vs permuted", value: 1.2, low: -0.4, high: 2.9, points: [0.5, 1.1, 2.0] },
    { label: "gap change", value: -3, low: -5, high: -1, points: [-2, -4], group: "p < 0.05" },
  ];
  const doc = parse(keep(intervalChart(rows, { xLabel: "Δ (points)", reference: 0 })));
  assertEquals(marks(doc, "rule", "line").length, 2 + 1, "2 intervals and the reference");
  assertEquals(marks(doc, "tick", "line").length, 4, "interval end ticks");
  // Dot groups: the per-seed points first (5), then one estimate per row (2).
  const dots = marks(doc, "dot", "circle");
  assertEquals(dots.length, 5 + 2);
  const x = (node: Node) => Number(node.getAttribute("cx"));
  // Positions follow the values: the second row's estimate (−3) lies left of the first's (1.2),
  // and of its own points, −4 lies left of −2.
  assert(x(dots[6]) < x(dots[5]), "estimates ordered by value");
  assert(x(dots[4]) < x(dots[3]), "points ordered by value");
  assert(hasText(doc, "Δ (points)") && hasText(doc, "gap change"), "labels");
  assertThrows(() => intervalChart([rows[0], rows[0]]), Error, "unique");
});

Deno.test("line chart: one path per series and panel, one dot per point", () => {
  const points = [];
  for (const model of ["VGG19", "ResNet50"]) {
    for (const series of ["train", "validation"]) {
      for (let epoch = 1; epoch <= 3; epoch++) {
        points.push({
          x: epoch,
          y: 1 / epoch + (series === "train" ? 0 : 0.1),
          series,
          facet: model,
        });
      }
    }
  }
  const doc = parse(keep(lineChart(points, { xLabel: "epoch", yLabel: "loss" })));
  assertEquals(marks(doc, "line", "path").length, 4);
  assertEquals(marks(doc, "dot", "circle").length, points.length);
  assert(hasText(doc, "epoch") && hasText(doc, "loss") && hasText(doc, "ResNet50"), "labels");
  // A single epoch still shows a dot per series (a one-point line is invisible).
  const single = parse(keep(lineChart([{ x: 1, y: 0.6, series: "train" }])));
  assertEquals(marks(single, "dot", "circle").length, 1);
});

Deno.test("image grid: one embedded PNG per image, pixelated, captions", () => {
  const [n, h, w] = [5, 6, 4];
  const data = Float32Array.from({ length: n * h * w }, (_, i) => (i * 7) % 13);
  const grid = keep(imageGrid({ data, shape: [n, h, w] }, {
    captions: ["a", "b", "c", "d", "e"],
    columns: 3,
    tileSize: 48,
  }));
  const doc = parse(grid);
  const images = marks(doc, "image", "image");
  assertEquals(images.length, n);
  const href = images[0].getAttribute("href") as string;
  assert(href.startsWith("data:image/png;base64,"));
  const png = decode(Buffer.from(href.slice(href.indexOf(",") + 1), "base64"));
  assertEquals([png.width, png.height], [w * 8, h * 8], "upsampled by ceil(48 / 6)");
  assert(hasText(doc, "e"), "captions");
  assertThrows(() => interactiveSpecs(grid), Error, "no interactive view");
  assertThrows(() => imageGrid([]), Error, "at least one image");
});

Deno.test("feature maps: channels extracted by stride, strongest first, one image each", () => {
  // [n=2, h=2, w=3, c=4]; value = 1000·image + 10·channel + pixel (hand-decodable).
  const [n, h, w, c] = [2, 2, 3, 4];
  const data = new Float32Array(n * h * w * c);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < c; k++) data[((i * h * w) + p) * c + k] = 1000 * i + 10 * k + p;
    }
  }
  const features = { data, shape: [n, h, w, c] as [number, number, number, number] };
  const [second] = featureMapChannels(features, 1, [2]);
  assertEquals(second.shape, [2, 3]);
  assertEquals(Array.from(second.data), [1020, 1021, 1022, 1023, 1024, 1025]);
  const doc = parse(keep(featureMapGrid(features, { image: 1, channels: 3 })));
  assertEquals(marks(doc, "image", "image").length, 3);
  // Channel means grow with k, so the strongest three are 3, 2, 1.
  assertEquals(
    marks(doc, "text", "text").map((t: Node) => t.textContent.trim()),
    ["channel 3", "channel 2", "channel 1"],
  );
});

Deno.test("training curves: a panel per model and metric, train and validation lines", () => {
  const history = (offset: number) =>
    [1, 2, 3].map((epoch) => ({
      epoch,
      trainLoss: 0.7 - 0.1 * epoch + offset,
      trainAccuracy: 0.5 + 0.1 * epoch,
      validationLoss: 0.75 - 0.08 * epoch + offset,
      validationAccuracy: 0.5 + 0.08 * epoch,
    }));
  const doc = parse(keep(trainingCurves([
    { model: "vgg19", history: history(0) },
    { model: "resnet50", history: history(0.05).slice(0, 2) },
  ])));
  // 2 models × 2 metrics × 2 series = 8 lines; points: (3 + 2 epochs) × 4 values.
  assertEquals(marksAll(doc, "line", "path").length, 8);
  assertEquals(marksAll(doc, "dot", "circle").length, 20);
  for (const label of ["vgg19", "resnet50", "loss", "accuracy", "epoch", "validation"]) {
    assert(hasText(doc, label), label);
  }
  assertThrows(() => trainingCurves([{ model: "x", history: [] }]), Error, "at least one");
});

Deno.test("figures: display bundle is the SVG, save writes it, every SVG is well-formed XML", async () => {
  const figure = keep(histogram([1, 2, 3], { title: "x < y & z" }));
  const bundle = figure[jupyterDisplay]();
  assertEquals(Object.keys(bundle), ["image/svg+xml"]);
  assertEquals(bundle["image/svg+xml"], figure.svg);
  const dir = await Deno.makeTempDir();
  try {
    await figure.save(`${dir}/sub/figure.svg`);
    assertEquals(await Deno.readTextFile(`${dir}/sub/figure.svg`), figure.svg);
    // Well-formedness by an independent XML parser.
    for (const [i, f] of made.entries()) await Deno.writeTextFile(`${dir}/${i}.svg`, f.svg);
    const check = new Deno.Command("/usr/bin/python3", {
      args: [
        "-c",
        "import glob, sys, xml.etree.ElementTree as E\n" +
        "files = sorted(glob.glob(sys.argv[1] + '/*.svg'))\n" +
        "[E.parse(f) for f in files]\nprint(len(files))",
        dir,
      ],
    });
    const result = await check.output().catch(() => undefined);
    if (result) {
      assert(result.success, new TextDecoder().decode(result.stderr));
      assertEquals(Number(new TextDecoder().decode(result.stdout).trim()), made.length);
    } else {
      console.warn("skipping XML well-formedness check: /usr/bin/python3 not found");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
