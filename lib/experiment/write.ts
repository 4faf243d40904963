/**
 * Writes a run's results folder: `config.json` (portable: no machine paths), `metrics.json`
 * (every seed of every model), the figures (SVG and PNG) and `report.md` (how it was made,
 * the tables, what they say, the figures, the notes). Every figure and sentence is computed
 * from the run's results and its cached inputs.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { classMeanImages } from "../image/mod.ts";
import {
  accuracyChart,
  confusionMatrices,
  heatmap,
  imageGrid,
  imageModelCurves,
  imageToPng,
  scatter,
  sweepChart,
} from "../plot/mod.ts";
import type { Figure, PngImage } from "../plot/mod.ts";
import { CONFIG_SCHEMA_VERSION, expandSweep } from "./config.ts";
import type { ResolvedConfig } from "./config.ts";
import { describeFindings } from "./findings.ts";
import { prepareInputs } from "./inputs.ts";
import type { ExperimentInputs } from "./inputs.ts";
import {
  formatAblationTable,
  formatResultsTable,
  formatSeconds,
  formatSeedTable,
} from "./report.ts";
import type { ModelRun, VariantResults } from "./results.ts";
import { describeOrigin, mergeOrigins } from "../provenance.ts";
import { grayscale } from "./layout.ts";
import type { ExperimentResults } from "./run.ts";

/** A figure of the report with its file name and caption. */
export interface ReportFigure {
  /** File name in the results folder. */
  file: string;
  /** Caption. */
  caption: string;
  /** The figure. */
  figure: Figure | PngImage;
}

function suffix(variant: VariantResults, index: number): string {
  return variant.label ? `-v${index + 1}` : "";
}

/** The layout figures' files and captions (the figures themselves need the run's inputs). */
const LAYOUT_CAPTIONS: Readonly<Record<string, string>> = {
  "tsne-layout.svg":
    "2-D map of the features (t-SNE unless the report says otherwise) with convex hull and " +
    "minimum bounding rectangle",
  "feature-density.svg": "Features per pixel",
  "mean-images.svg": "Mean training image of negative and positive reviews",
  "mean-difference.svg": "Positive minus negative mean image",
  "example-positive.png": "One positive training review as an image (×4)",
  "example-negative.png": "One negative training review as an image (×4)",
};

/** The feature map's name in figures: `t-SNE`, `PCA`, `kernel PCA`, `UMAP` or `random`. */
const MAP_NAMES: Readonly<Record<string, string>> = {
  tsne: "t-SNE",
  pca: "PCA",
  kpca: "kernel PCA",
  umap: "UMAP",
  random: "random layout",
};

function layoutFigures(inputs: ExperimentInputs): ReportFigure[] {
  const layout = inputs.transformer.layout();
  const map = MAP_NAMES[inputs.cfg.image.featureExtractor ?? "tsne"];
  // Multi-channel layouts are shown as their channel mean.
  const train = grayscale(inputs.images.train);
  const means = classMeanImages(train, inputs.labels.train);
  const [, h, w] = train.shape;
  const exampleOf = (label: number) => {
    const i = inputs.labels.train.indexOf(label);
    return {
      data: train.data.subarray(i * h * w, (i + 1) * h * w),
      shape: [h, w] as [number, number],
    };
  };
  return [
    {
      file: "tsne-layout.svg",
      caption: LAYOUT_CAPTIONS["tsne-layout.svg"],
      figure: scatter(layout.embedding, {
        polygons: [
          { name: "convex hull", points: layout.hull.points },
          { name: "bounding rectangle", points: layout.rectangle.corners },
        ],
        equalAspect: true,
        radius: 1.5,
        title: `${map} map of ${layout.embedding.shape[0]} features`,
        xLabel: `${map} 1`,
        yLabel: `${map} 2`,
      }),
    },
    {
      file: "feature-density.svg",
      caption: LAYOUT_CAPTIONS["feature-density.svg"],
      figure: heatmap(inputs.transformer.featureDensityMatrix(), {
        title: "Features per pixel",
        legendLabel: "features",
        scheme: "viridis",
      }),
    },
    {
      file: "mean-images.svg",
      caption: LAYOUT_CAPTIONS["mean-images.svg"],
      figure: imageGrid([means.negative, means.positive], {
        title: "Mean images: negative, positive",
        captions: ["negative", "positive"],
        tileSize: 200,
        legendLabel: "mean scaled value",
      }),
    },
    {
      file: "mean-difference.svg",
      caption: LAYOUT_CAPTIONS["mean-difference.svg"],
      figure: heatmap(means.difference, {
        title: "Positive minus negative mean image",
        diverging: true,
        legendLabel: "difference",
      }),
    },
    {
      file: "example-positive.png",
      caption: LAYOUT_CAPTIONS["example-positive.png"],
      figure: imageToPng(exampleOf(1), { scale: 4 }),
    },
    {
      file: "example-negative.png",
      caption: LAYOUT_CAPTIONS["example-negative.png"],
      figure: imageToPng(exampleOf(0), { scale: 4 }),
    },
  ];
}

function resultFigures(results: ExperimentResults): ReportFigure[] {
  const figures: ReportFigure[] = [];
  for (const field of results.sweep) {
    const figure = sweepChart(results, field);
    if (figure) {
      figures.push({
        file: `sweep-${field.replace(/\W+/g, "-")}.svg`,
        caption: `Test accuracy against ${field}`,
        figure,
      });
    }
  }
  results.variants.forEach((v, i) => {
    const tag = v.label ? ` (${v.label})` : "";
    figures.push({
      file: `accuracy${suffix(v, i)}.svg`,
      caption: `Test accuracy, mean over seeds with 95% intervals${tag}`,
      figure: accuracyChart(v),
    });
    const curves = imageModelCurves(v);
    if (curves) {
      figures.push({
        file: `training-curves${suffix(v, i)}.svg`,
        caption: `Training curves${tag}`,
        figure: curves,
      });
    }
    if (i === 0) {
      for (const { model, figure } of confusionMatrices(v)) {
        figures.push({
          file: `confusion-${model}.svg`,
          caption: `Confusion matrix: ${model}${tag}`,
          figure,
        });
      }
    }
  });
  return figures;
}

/** The kernels a run recorded (runs before the native kernels recorded none). */
function kernelsOf(kernels: string | undefined): string {
  return kernels ? `kernels ${kernels}` : "wasm kernels (no native kernels recorded)";
}

/** What a run computed itself: texts embedded, model fits trained. */
export function computedSummary(results: ExperimentResults): string {
  const runs = results.variants.flatMap((v) => v.models.flatMap((m) => m.runs));
  const texts = results.variants.reduce(
    (a, v) => a + (v.provenance?.embeddings.computed ?? 0),
    0,
  );
  return `embedded ${texts} texts; trained ${
    runs.filter((r) => r.provenance.computed).length
  } of ${runs.length} model fits`;
}

/** The comparison with the results this run replaced (see `ExperimentResults.previous`). */
function previousLines(results: ExperimentResults): string[] {
  const p = results.previous;
  if (!p) return [];
  const ratio = p.totalSeconds / results.totalSeconds;
  return [
    "",
    `Wall time against the results this run replaced (finished ${p.finishedAt}, code ` +
    `${p.code}, ${kernelsOf(p.kernels)}): ${formatSeconds(p.totalSeconds)} then (${p.computed}), ` +
    `${formatSeconds(results.totalSeconds)} now (${computedSummary(results)}): ` +
    `${ratio >= 1 ? `${ratio.toFixed(2)}× faster` : `${(1 / ratio).toFixed(2)}× slower`}.`,
  ];
}

function provenance(results: ExperimentResults): string {
  return modelProvenance(results.variants.flatMap((v) => v.models.flatMap((m) => m.runs)));
}

function modelProvenance(runs: ModelRun[]): string {
  const cached = runs.filter((r) => !r.provenance.computed);
  const makers = [
    ...new Set(
      cached.map((r) =>
        `${r.provenance.madeBy} (${r.provenance.madeAt.slice(0, 16)}Z, code ${r.provenance.code})`
      ),
    ),
  ];
  return `${runs.length - cached.length} of ${runs.length} model fits were computed by this call` +
    (cached.length
      ? `; ${cached.length} were read from the cache of earlier calls (${makers.join(", ")}), ` +
        `their times are those calls'`
      : "");
}

/** Backbone features per image model, over its seeds: which calls computed them. */
function featureLines(v: VariantResults): string[] {
  const lines: string[] = [];
  for (const m of v.models) {
    if (m.input !== "image") continue;
    const runs = m.runs.filter((r) => r.provenance.features !== undefined);
    if (runs.length === 0) continue;
    const endToEnd = runs.filter((r) => r.provenance.features === "end-to-end").length;
    const recorded = runs.map((r) => r.provenance.featureOrigin).filter((o) => o !== undefined);
    const parts: string[] = [];
    if (endToEnd) parts.push(`${endToEnd} job(s) ran the backbone per batch (no cache)`);
    if (recorded.length) parts.push(describeOrigin(mergeOrigins(recorded), "rows"));
    const unrecorded = runs.length - endToEnd - recorded.length;
    if (unrecorded) {
      parts.push(
        `${unrecorded} job(s) stored before feature makers were recorded (features ` +
          runs.filter((r) => !r.provenance.featureOrigin && r.provenance.features !== "end-to-end")
            .map((r) => r.provenance.features).join("/") +
          ")",
      );
    }
    lines.push(`  - ${m.id} (${runs.length} seed(s)): ${parts.join("; ")}`);
  }
  return lines;
}

/** Per stage: computed by this call, or read from caches made by which run, code and date. */
function stageProvenance(v: VariantResults, results: ExperimentResults): string[] {
  const p = v.provenance;
  if (!p) {
    return [
      "- Provenance per stage: not recorded (results written before it was); " +
      embeddingProvenance(v) + ".",
    ];
  }
  const computedIn = (origin: { computed: number }, seconds: number) =>
    origin.computed > 0 ? ` (${formatSeconds(seconds)})` : "";
  const features = featureLines(v);
  return [
    "- Provenance per stage (this call: " +
    `run ${results.name}, code ${results.environment.code}, started ${results.startedAt}):`,
    `  - reviews: ${p.reviews.records} read from \`${p.reviews.source}\` by this call ` +
    `(SHA-256 of texts and labels ${p.reviews.sha256.slice(0, 12)})`,
    `  - embeddings: ${describeOrigin(p.embeddings, "texts")}` +
    computedIn(p.embeddings, v.embedding.seconds),
    `  - layout: ${describeOrigin(p.layout, "files")}` + computedIn(p.layout, v.images.seconds),
    ...(features.length
      ? ["  - backbone features, per image model:", ...features.map((l) => `  ${l}`)]
      : []),
    `  - model fits: ${modelProvenance(v.models.flatMap((m) => m.runs))}`,
  ];
}

function embeddingProvenance(v: VariantResults): string {
  const total = v.data.train + v.data.validation + v.data.test;
  const cached = v.embedding.cachedTexts;
  if (cached >= total) {
    return `embeddings read from the embedding store (computed by an earlier call)`;
  }
  return `embeddings of ${total - cached} texts computed by this call in ` +
    `${formatSeconds(v.embedding.seconds)}` + (cached ? `, ${cached} read from the store` : "");
}

function variantSection(v: VariantResults, results: ExperimentResults): string[] {
  const d = v.data, i = v.images;
  return [
    ...(v.label ? [`## Variant ${v.label}`, ""] : []),
    `- Data: ${d.name ?? "IMDB"}, ${d.scheme} split: ${d.train} train / ${d.validation} ` +
    `validation / ${d.test} test reviews (${d.testPositives} test positives)` +
    (d.labels
      ? `; labels: 0 = ${JSON.stringify(d.labels.negative)}, 1 = ${
        JSON.stringify(d.labels.positive)
      }`
      : "") +
    ".",
    `- Text encoder: ${v.embedding.encoder}, ${v.embedding.features} features per review.`,
    `- Images: ${i.pixels}×${i.pixels}, ${MAP_NAMES[i.featureExtractor ?? "tsne"]} map` +
    (i.compat ? ` (${i.compat} geometry)` : "") +
    (i.channels?.mode === "states"
      ? `, hidden states as channels (${i.channels.count} states, one layout of their ` +
        `dimensions, mapped to 3 channels)`
      : i.channels?.combine === "average"
      ? `, ${i.channels.count} layouts (${i.channels.layouts?.join(", ")}; the map named is ` +
        `the first), one classifier each (\`<model>.layout<k>\`) and their mean probability ` +
        `as the model itself`
      : i.channels
      ? `, ${i.channels.count} layouts stacked as channels (${
        i.channels.layouts?.join(", ")
      }; the map named is the first)`
      : "") +
    `, ${i.discretization} discretisation, ${i.scaler} scaler, ` +
    `layout fitted on ${i.fitOn} rows (${
      i.cached ? "read from the cache" : `fitted by this call in ${formatSeconds(i.seconds)}`
    }), ${i.emptyPixels} ` +
    `empty pixels` +
    (i.klDivergence !== undefined ? `, t-SNE KL divergence ${i.klDivergence.toFixed(3)}` : "") +
    ".",
    ...stageProvenance(v, results),
    "",
    "### All models (test set, over seeds)",
    "",
    formatResultsTable(v),
    "",
    "`epoch kept/run`: per seed, the epoch whose weights were kept and the epochs run (`*`: " +
    "stopped early).",
    "",
    ...(v.ablations.length ? ["### Ablations", "", formatAblationTable(v), ""] : []),
    "### What it means",
    "",
    ...describeFindings(v),
    "",
    "### Per seed",
    "",
    formatSeedTable(v),
    "",
  ];
}

/** The report's Markdown. */
export function reportMarkdown(
  results: ExperimentResults,
  command: string,
  figures: Pick<ReportFigure, "file" | "caption">[],
  rendered?: string,
): string {
  const unavailable = [...new Map(
    results.variants.flatMap((v) => v.unavailable).map((u) => [u.name, u]),
  ).values()];
  return [
    `# Results: ${results.name}`,
    "",
    `Made with \`${command}\` (config \`${results.config.origin}\`), finished ` +
    `${results.finishedAt}: ${formatSeconds(results.totalSeconds)} on ` +
    `${results.environment.cores} cores, Deno ${results.environment.deno}, tfjs ` +
    `${results.environment.backend} backend, ${kernelsOf(results.environment.kernels)}, code ` +
    `${results.environment.code}; ${provenance(results)}.`,
    ...previousLines(results),
    ...(rendered ? ["", rendered] : []),
    ...(results.config.description ? ["", results.config.description] : []),
    "",
    ...results.variants.flatMap((v) => variantSection(v, results)),
    "## Figures",
    "",
    ...figures.flatMap((f) => [`![${f.caption}](${f.file})`, "", `*${f.caption}*`, ""]),
    "## Settings, deviations from the paper, and methods",
    "",
    ...results.notes.map((n) => `- ${n}`),
    ...unavailable.map((u) => `- Not run: ${u.name}. ${u.reason}`),
    "",
    "The full configuration (defaults filled in) is in `config.json`; every number above, for " +
    "every seed, is in `metrics.json`.",
    "",
  ].join("\n");
}

/**
 * Writes `results/<run>/` for `results` of `cfg` into `outDir`: config, metrics, figures and
 * report. The layout figures come from the first variant's cached inputs (nothing is
 * recomputed when the run finished).
 */
export async function writeResults(
  results: ExperimentResults,
  cfg: ResolvedConfig,
  outDir: string,
  command: string,
): Promise<string> {
  const first = expandSweep(cfg)[0].config;
  const inputs = await prepareInputs(first, { log: () => {} });
  const figures = [...resultFigures(results), ...layoutFigures(inputs)];
  results.previous ??= await previousResults(outDir, results.name);
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(
    join(outDir, "config.json"),
    JSON.stringify(results.config, null, 2) + "\n",
  );
  await Deno.writeTextFile(join(outDir, "metrics.json"), JSON.stringify(results, null, 1) + "\n");
  for (const f of figures) await f.figure.save(join(outDir, f.file));
  const report = reportMarkdown(results, results.command ?? command, figures);
  await Deno.writeTextFile(join(outDir, "report.md"), report);
  return report;
}

/** The results of run `name` already in `dir`, summarised, or undefined (none, or unreadable). */
async function previousResults(
  dir: string,
  name: string,
): Promise<ExperimentResults["previous"]> {
  let old: ExperimentResults;
  try {
    old = await readResults(dir);
  } catch {
    return undefined; // no earlier results, or of another format: nothing to compare
  }
  if (old.name !== name) return undefined;
  return {
    finishedAt: old.finishedAt,
    totalSeconds: old.totalSeconds,
    code: old.environment.code,
    ...(old.environment.kernels ? { kernels: old.environment.kernels } : {}),
    computed: computedSummary(old),
  };
}

/**
 * Renders `report.md` and the result figures of a results folder again from its
 * `metrics.json`, with this code's report (nothing is recomputed; the layout figures, which
 * need the run's inputs, are kept as they are). The report says when and by which code it
 * was rendered, and which command made the numbers.
 */
export async function renderReport(dir: string, code: string): Promise<string> {
  const results = await readResults(dir);
  const drawn = resultFigures(results);
  for (const f of drawn) await f.figure.save(join(dir, f.file));
  const figures: Pick<ReportFigure, "file" | "caption">[] = [...drawn];
  for (const [file, caption] of Object.entries(LAYOUT_CAPTIONS)) {
    if (existsSync(join(dir, file))) figures.push({ file, caption });
  }
  const command = results.command ?? `deno task reproduce --config ${results.config.origin}`;
  const report = reportMarkdown(
    results,
    command,
    figures,
    `This report and its result figures were rendered again from \`metrics.json\` on ` +
      `${new Date().toISOString()} by code ${code} (\`deno task report --run ${results.name}\`); ` +
      `every number is the run's.` +
      (results.command ? "" : ` (The run's metrics.json predates recording the command; the ` +
        `command above is the config it names.)`),
  );
  await Deno.writeTextFile(join(dir, "report.md"), report);
  return report;
}

/**
 * Reads a results folder's `metrics.json` (e.g. `results/use-lite-5k`); an older format is
 * an error that says how to regenerate it.
 */
export async function readResults(dir: string): Promise<ExperimentResults> {
  const path = join(dir, "metrics.json");
  const results = JSON.parse(await Deno.readTextFile(path)) as ExperimentResults;
  if (results.schemaVersion !== CONFIG_SCHEMA_VERSION) {
    throw new Error(
      `${path} is of results format ${results.schemaVersion ?? 1}, this toolkit reads ` +
        `${CONFIG_SCHEMA_VERSION}: regenerate it with \`deno task reproduce --config <its config>\`.`,
    );
  }
  return results;
}
