/**
 * The main job: runs the whole experiment from a JSON config (every stage cached and
 * resumable) and writes `results/<run-name>/`: the config, `metrics.json`, the figures (SVG
 * and PNG) and `report.md`.
 *
 *     deno task reproduce                          # the shipped `quick` config
 *     deno task reproduce --config paper           # a shipped config by name (tools/configs/)
 *     deno task reproduce --config my-run.json     # your own config file
 *     deno task reproduce --config quick --train 5000 --test 5000 --name use-lite-5k
 *
 * Flags `--name`, `--train`, `--test`, `--epochs`, `--backbones a,b`, `--workers`,
 * `--upsample` override the config; `--out DIR` changes the results folder (default
 * `results/`). Ctrl-C stops between stages; finished work stays cached and the same command
 * resumes it.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { projectRoot } from "../lib/config.ts";
import {
  describeFindings,
  formatResultsTable,
  prepareInputs,
  runExperiment,
} from "../lib/eval/mod.ts";
import type { ExperimentConfig, ExperimentResults } from "../lib/eval/mod.ts";
import { classMeanImages } from "../lib/image/mod.ts";
import {
  accuracyChart,
  confusionMatrices,
  heatmap,
  imageGrid,
  imageModelCurves,
  scatter,
} from "../lib/plot/mod.ts";
import type { Figure, PngImage } from "../lib/plot/mod.ts";
import { imageToPng } from "../lib/plot/mod.ts";

/** Where shipped configs live. */
const configsDir = join(projectRoot, "tools", "configs");

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function configPathOf(nameOrPath: string): string {
  if (existsSync(nameOrPath)) return nameOrPath;
  const shipped = join(configsDir, `${nameOrPath}.json`);
  if (existsSync(shipped)) return shipped;
  const names = [...Deno.readDirSync(configsDir)].map((e) => e.name.replace(/\.json$/, ""));
  throw new Error(
    `No config "${nameOrPath}": give a JSON file or one of the shipped configs (${
      names.join(", ")
    }).`,
  );
}

/** Reads the config and applies the command-line overrides. */
function readConfig(): { config: ExperimentConfig; path: string } {
  const path = configPathOf(flag("config") ?? "quick");
  const config = JSON.parse(Deno.readTextFileSync(path)) as ExperimentConfig;
  const number = (name: string) => {
    const value = flag(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} needs a positive number`);
    return n;
  };
  config.name = flag("name") ?? config.name;
  config.data = { ...config.data };
  config.models = { ...config.models };
  config.data.trainSize = number("train") ?? config.data.trainSize;
  config.data.testSize = number("test") ?? config.data.testSize;
  config.models.epochs = number("epochs") ?? config.models.epochs;
  config.models.workers = number("workers") ?? config.models.workers;
  config.models.upsample = number("upsample") ?? config.models.upsample;
  const backbones = flag("backbones");
  if (backbones) config.models.backbones = backbones.split(",");
  return { config, path };
}

/** The report's Markdown. */
function reportMarkdown(
  results: ExperimentResults,
  command: string,
  figures: { file: string; caption: string }[],
): string {
  const d = results.data, i = results.images;
  const minutes = (results.totalSeconds / 60).toFixed(1);
  return [
    `# Results: ${results.name}`,
    "",
    `Reproduced with \`${command}\` (${results.finishedAt}, ${minutes} min on ` +
    `${results.environment.cores} cores, Deno ${results.environment.deno}, tfjs ` +
    `${results.environment.backend} backend` +
    (results.cachedModels.length
      ? `; ${results.cachedModels.length} image models were trained by an earlier run of the ` +
        `same configuration and read from its cache, their times are that run's`
      : "") +
    `).`,
    "",
    `- Data: IMDB, ${d.scheme} split: ${d.train} train / ${d.validation} validation / ${d.test} ` +
    `test reviews (${d.testPositives} test positives).`,
    `- Text encoder: ${results.embedding.encoder}, ${results.embedding.features} features per review.`,
    `- Images: ${i.pixels}×${i.pixels}, ${i.discretization} discretisation, ${i.scaler} scaler, ` +
    `layout fitted on ${i.fitOn} rows, ${i.emptyPixels} empty pixels` +
    (i.klDivergence !== undefined ? `, t-SNE KL divergence ${i.klDivergence.toFixed(3)}` : "") +
    ".",
    "",
    "## All models (test set)",
    "",
    formatResultsTable(results),
    "",
    "## What it means",
    "",
    ...describeFindings(results),
    "",
    "## Figures",
    "",
    ...figures.flatMap((f) => [`![${f.caption}](${f.file})`, "", `*${f.caption}*`, ""]),
    "## Deviations from the paper, and why",
    "",
    ...results.notes.map((n) => `- ${n}`),
    ...results.unavailable.map((u) => `- Not run: ${u.name}. ${u.reason}`),
    "",
    "The full configuration (defaults filled in) is in `config.json`; every number above is in " +
    "`metrics.json`.",
    "",
  ].join("\n");
}

let config: ExperimentConfig, configPath: string;
try {
  ({ config, path: configPath } = readConfig());
} catch (e) {
  console.error(`reproduce: ${(e as Error).message}`);
  Deno.exit(2);
}
const outDir = resolve(flag("out") ?? join(projectRoot, "results"), config.name);
const command = `deno task reproduce ${Deno.args.join(" ")}`.trim();
console.error(`experiment "${config.name}" from ${relative(projectRoot, configPath)}`);

const controller = new AbortController();
Deno.addSignalListener("SIGINT", () => {
  console.error("\ninterrupted: finished work stays cached; run the same command to resume");
  controller.abort();
});
let results: ExperimentResults;
try {
  results = await runExperiment(config, { signal: controller.signal });
} catch (e) {
  if (controller.signal.aborted) Deno.exit(130);
  console.error(`\nreproduce failed: ${(e as Error).message}`);
  Deno.exit(1);
}

// The layout figures: every input comes from the run's caches (nothing is recomputed).
const inputs = await prepareInputs(config);
const layout = inputs.transformer.layout();
const means = classMeanImages(inputs.images.train, inputs.labels.train);
const figures: { file: string; caption: string; figure: Figure | PngImage }[] = [
  {
    file: "accuracy.svg",
    caption: "Test accuracy with 95% Wilson intervals",
    figure: accuracyChart(results),
  },
];
const curves = imageModelCurves(results);
if (curves) {
  figures.push({ file: "training-curves.svg", caption: "Training curves", figure: curves });
}
figures.push(
  {
    file: "tsne-layout.svg",
    caption: "t-SNE map of the features with convex hull and minimum bounding rectangle",
    figure: scatter(layout.embedding, {
      polygons: [
        { name: "convex hull", points: layout.hull.points },
        { name: "bounding rectangle", points: layout.rectangle.corners },
      ],
      equalAspect: true,
      radius: 1.5,
      title: `t-SNE map of ${layout.embedding.shape[0]} features`,
      xLabel: "t-SNE 1",
      yLabel: "t-SNE 2",
    }),
  },
  {
    file: "feature-density.svg",
    caption: "Features per pixel",
    figure: heatmap(inputs.transformer.featureDensityMatrix(), {
      title: "Features per pixel",
      legendLabel: "features",
      scheme: "viridis",
    }),
  },
  {
    file: "mean-images.svg",
    caption: "Mean training image of negative and positive reviews",
    figure: imageGrid([means.negative, means.positive], {
      title: "Mean images: negative, positive",
      captions: ["negative", "positive"],
      tileSize: 200,
      legendLabel: "mean scaled value",
    }),
  },
  {
    file: "mean-difference.svg",
    caption: "Positive minus negative mean image",
    figure: heatmap(means.difference, {
      title: "Positive minus negative mean image",
      diverging: true,
      legendLabel: "difference",
    }),
  },
  {
    file: "example-positive.png",
    caption: "One positive training review as an image (×4)",
    figure: imageToPng(exampleOf(1), { scale: 4 }),
  },
  {
    file: "example-negative.png",
    caption: "One negative training review as an image (×4)",
    figure: imageToPng(exampleOf(0), { scale: 4 }),
  },
);
for (const { model, figure } of confusionMatrices(results)) {
  figures.push({ file: `confusion-${model}.svg`, caption: `Confusion matrix: ${model}`, figure });
}

function exampleOf(label: number) {
  const [, h, w] = inputs.images.train.shape;
  const i = inputs.labels.train.indexOf(label);
  return {
    data: inputs.images.train.data.subarray(i * h * w, (i + 1) * h * w),
    shape: [h, w] as [number, number],
  };
}

await Deno.mkdir(outDir, { recursive: true });
await Deno.writeTextFile(
  join(outDir, "config.json"),
  JSON.stringify(results.config, null, 2) + "\n",
);
await Deno.writeTextFile(join(outDir, "metrics.json"), JSON.stringify(results, null, 2) + "\n");
for (const f of figures) await f.figure.save(join(outDir, f.file));
await Deno.writeTextFile(join(outDir, "report.md"), reportMarkdown(results, command, figures));
console.log(formatResultsTable(results));
console.log(`\nreport: ${relative(Deno.cwd(), join(outDir, "report.md"))}`);
Deno.exit(0);
