/**
 * Plain-text tables of a run's results, for terminals, notebooks and Markdown reports: one
 * row per model over its seeds ({@link formatResultsTable}) and one row per model and seed
 * ({@link formatSeedTable}).
 *
 * @module
 */
import type { SeedSummary } from "../eval/stats.ts";
import type { ExperimentResults } from "./run.ts";
import type { Comparison, ModelRun, ModelSummary, VariantResults } from "./results.ts";

function pct(x: number | undefined, digits = 1): string {
  return x !== undefined && Number.isFinite(x) ? (100 * x).toFixed(digits) : "–";
}

function signedPct(x: number): string {
  return `${x >= 0 ? "+" : ""}${pct(x)}`;
}

function count(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** Seconds as `12.3 s` or `4.5 min`. */
export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return "–";
  return s >= 90 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;
}

/** A p-value as text (`<0.001` below a thousandth). */
export function formatP(p: number): string {
  return p < 0.001 ? "<0.001" : p.toFixed(3);
}

/** `mean ± sd` in percent (just the value for one seed). */
export function meanSd(s: SeedSummary): string {
  return s.sd === null ? pct(s.mean) : `${pct(s.mean)} ± ${pct(s.sd)}`;
}

/** `[low, high]` in percent, or `–`. */
export function interval(ci: readonly [number, number] | null | undefined): string {
  return ci ? `[${pct(ci[0])}, ${pct(ci[1])}]` : "–";
}

/** A comparison as `+1.2 [0.3, 2.1]`. */
export function formatComparison(c: Comparison | undefined): string {
  return c ? `${signedPct(c.difference)} ${interval(c.ci95)}` : "";
}

function epochs(m: ModelSummary): string {
  const runs = m.runs.filter((r) => r.epochsRun !== undefined);
  if (runs.length === 0) return "–";
  return runs.map((r) => `${r.selectedEpoch ?? "?"}/${r.epochsRun}${r.stoppedEarly ? "*" : ""}`)
    .join(" ");
}

function input(m: ModelSummary): string {
  if (m.input === "text") return "TF-IDF of the text";
  if (m.input === "embedding" || !m.backbone) return "embedding";
  const b = m.backbone;
  const name = b.weights === "random"
    ? `${b.name.replace(/_random_init_s\d+$/, "")} (random)`
    : b.name;
  return `${name} ${b.featureShape.join("×")}`;
}

/**
 * Seconds spent computing backbone features per seed, over the runs that computed them; a
 * cache read is not a computation and shows as `cache`; a backbone run per batch inside the
 * fit shows as `in fit`.
 */
function featureTime(m: ModelSummary): string {
  if (m.input !== "image") return "–";
  if (m.runs.every((r) => r.provenance.features === "end-to-end")) return "in fit";
  const computed = m.runs.filter((r) => r.provenance.features === "computed");
  if (computed.length === 0) return "cache";
  const t = formatSeconds(meanOf(computed, (r) => r.timings.featureSeconds));
  return computed.length === m.runs.length ? t : `${t} (${computed.length} of ${m.runs.length})`;
}

function meanOf(runs: ModelRun[], f: (r: ModelRun) => number): number {
  return runs.reduce((s, r) => s + f(r), 0) / runs.length;
}

/** Column titles of {@link formatResultsTable}. */
export const RESULT_COLUMNS: readonly string[] = [
  "model",
  "kind",
  "input",
  "seeds",
  "test acc % (mean ± sd)",
  "95% CI over seeds",
  "F1 %",
  "AUC %",
  "val acc %",
  "vs logistic: Δ % [95% CI]",
  "p (Holm)",
  "epoch kept/run",
  "params trainable / frozen",
  "fit time per seed",
  "features per seed",
];

/** One row per model: the columns of {@link formatResultsTable}. */
export function resultRow(m: ModelSummary): string[] {
  const vs = m.versusLogistic;
  return [
    m.id,
    m.kind,
    input(m),
    String(m.runs.length),
    meanSd(m.test.accuracy),
    interval(m.test.accuracy.ci95),
    pct(m.test.f1.mean),
    pct(m.test.rocAuc.mean),
    m.validation ? meanSd(m.validation.accuracy) : "–",
    formatComparison(vs),
    vs ? formatP(vs.pHolm) : "",
    epochs(m),
    `${count(m.runs[0].params.trainable)} / ${count(m.runs[0].params.frozen)}`,
    formatSeconds(meanOf(m.runs, (r) => r.timings.fitSeconds)),
    featureTime(m),
  ];
}

/** Column titles of {@link formatSeedTable}. */
export const SEED_COLUMNS: readonly string[] = [
  "model",
  "seed",
  "test acc % [95% Wilson]",
  "val acc %",
  "vs logistic (McNemar)",
  "epoch kept/run",
  "computed",
];

/** One row per model and seed. */
export function seedRow(m: ModelSummary, r: ModelRun): string[] {
  const t = r.metrics.test;
  const vs = r.versusLogistic;
  return [
    m.id,
    r.seed === null ? "–" : String(r.seed),
    `${pct(t.accuracy)} ${interval(t.accuracyCI95)}`,
    pct(r.metrics.validation?.accuracy),
    vs ? `${signedPct(vs.difference)} (p ${formatP(vs.pValue)})` : "",
    r.epochsRun !== undefined
      ? `${r.selectedEpoch}/${r.epochsRun}${r.stoppedEarly ? " (early stop)" : ""}`
      : "–",
    (r.provenance.computed
      ? "this run"
      : `cache (${r.provenance.madeBy}, ${r.provenance.madeAt.slice(0, 10)}, ` +
        `code ${r.provenance.code})`) +
    (r.provenance.features ? `; features: ${r.provenance.features}` : ""),
  ];
}

/** A Markdown table (pipe-separated, aligned for reading as plain text). */
export function markdownTable(columns: readonly string[], rows: string[][]): string {
  const all = [columns.slice(), ...rows];
  const widths = columns.map((_, c) => Math.max(...all.map((r) => [...r[c]].length)));
  const line = (r: string[]) =>
    `| ${r.map((cell, c) => cell + " ".repeat(widths[c] - [...cell].length)).join(" | ")} |`;
  return [
    line(all[0]),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...all.slice(1).map(line),
  ].join("\n");
}

/** The variant's models over seeds as a Markdown table. */
export function formatResultsTable(variant: VariantResults): string {
  return markdownTable(RESULT_COLUMNS, variant.models.map(resultRow));
}

/** The variant's models per seed as a Markdown table. */
export function formatSeedTable(variant: VariantResults): string {
  return markdownTable(
    SEED_COLUMNS,
    variant.models.flatMap((m) => m.runs.map((r) => seedRow(m, r))),
  );
}

/** The ablation comparisons of a variant as a Markdown table. */
export function formatAblationTable(variant: VariantResults): string {
  return markdownTable(
    ["ablation", "against", "seeds", "Δ test acc % [95% CI]", "p (Holm)"],
    variant.ablations.map((c) => [
      c.model,
      c.against,
      String(c.seeds),
      formatComparison(c),
      formatP(c.pHolm),
    ]),
  );
}

/** A short summary of a run: per variant its facts and table, then the notes. */
export function formatResultsSummary(results: ExperimentResults): string {
  const lines: string[] = [];
  for (const v of results.variants) {
    const d = v.data, i = v.images;
    lines.push(
      `${
        v.label ? `[${v.label}] ` : ""
      }${d.train} train / ${d.validation} validation / ${d.test} ` +
        `test reviews (${d.scheme} split); ${v.embedding.encoder} (${v.embedding.features} ` +
        `features); ${i.pixels}×${i.pixels} images (${i.discretization}, ${i.scaler} scaler, layout ` +
        `fitted on ${i.fitOn} rows, ${i.emptyPixels} empty pixels)`,
      "",
      formatResultsTable(v),
      "",
    );
  }
  lines.push(
    `${formatSeconds(results.totalSeconds)} in all.`,
    ...results.notes.map((n) => `- ${n}`),
  );
  return lines.join("\n");
}
