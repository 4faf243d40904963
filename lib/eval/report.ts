/**
 * Plain-text tables of experiment results, for terminals and Markdown reports.
 *
 * @module
 */
import type { ExperimentResults, ModelResult } from "./experiment.ts";

function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? (100 * x).toFixed(digits) : "–";
}

function count(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

function seconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return "–";
  return s >= 90 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;
}

function pValue(p: number): string {
  return p < 0.001 ? "<0.001" : p.toFixed(3);
}

/** One row per model: the columns of {@link formatResultsTable}. */
export function resultRow(m: ModelResult): string[] {
  const t = m.metrics.test;
  const input = m.input === "embedding"
    ? "embedding"
    : `${m.backbone!.name}${m.backbone!.weights === "random" ? " (random init)" : ""} ` +
      `${m.backbone!.featureShape.join("×")}`;
  const vs = m.versusLogistic
    ? `${m.versusLogistic.accuracyDifference >= 0 ? "+" : ""}${
      pct(m.versusLogistic.accuracyDifference)
    } (p ${pValue(m.versusLogistic.pValue)})`
    : "";
  const fit = (m.timings.featureSeconds ?? 0) + (m.timings.fitSeconds ?? 0);
  return [
    m.name,
    m.kind,
    input,
    `${pct(t.accuracy)} [${pct(t.accuracyCI95[0])}, ${pct(t.accuracyCI95[1])}]`,
    pct(t.f1),
    pct(t.rocAuc),
    m.metrics.validation ? pct(m.metrics.validation.accuracy) : "–",
    vs,
    m.selectedEpoch !== undefined ? `${m.selectedEpoch}/${m.history?.length ?? "?"}` : "–",
    `${count(m.params.trainable)} / ${count(m.params.frozen)}`,
    seconds(fit),
  ];
}

/** Column titles of {@link formatResultsTable}. */
export const RESULT_COLUMNS: readonly string[] = [
  "model",
  "kind",
  "input",
  "test acc % [95% CI]",
  "F1 %",
  "AUC %",
  "val acc %",
  "vs logistic (McNemar)",
  "epoch",
  "params trainable / frozen",
  "time",
];

/** The results as a Markdown table (pipe-separated, aligned for reading as plain text). */
export function formatResultsTable(results: ExperimentResults): string {
  const rows = [RESULT_COLUMNS.slice(), ...results.models.map(resultRow)];
  const widths = RESULT_COLUMNS.map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  const line = (r: string[]) =>
    `| ${r.map((cell, c) => cell + " ".repeat(widths[c] - [...cell].length)).join(" | ")} |`;
  return [
    line(rows[0]),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.slice(1).map(line),
  ].join("\n");
}

/** A short summary: data, encoder, images, the table, and the notes. */
export function formatResultsSummary(results: ExperimentResults): string {
  const d = results.data, i = results.images;
  return [
    `Experiment ${results.name}: ${d.train} train / ${d.validation} validation / ${d.test} test ` +
    `reviews (${d.scheme} split, ${d.testPositives} test positives); ${results.embedding.encoder} ` +
    `(${results.embedding.features} features); ${i.pixels}×${i.pixels} images (${i.discretization}, ` +
    `${i.scaler} scaler, layout fitted on ${i.fitOn} rows, ${i.emptyPixels} empty pixels` +
    `${i.klDivergence !== undefined ? `, t-SNE KL ${i.klDivergence.toFixed(3)}` : ""}); ` +
    `${seconds(results.totalSeconds)} in all` +
    (results.cachedModels.length
      ? ` (${results.cachedModels.join(", ")} read from an earlier run's cache).`
      : "."),
    "",
    formatResultsTable(results),
    "",
    ...results.notes.map((n) => `- ${n}`),
    ...(results.unavailable.length
      ? [
        `- Not run (no loadable weights here): ${
          results.unavailable.map((u) => u.name).join(", ")
        }.`,
      ]
      : []),
  ].join("\n");
}
