/**
 * What a run says about the paper's idea, in words computed from its numbers: the best image
 * model (chosen on validation accuracy, never test) against logistic regression on the same
 * embeddings, and each ablation against its intact model. Shared by the notebooks and the
 * `reproduce` report so both say the same thing.
 *
 * @module
 */
import { formatComparison, formatP, interval, meanSd } from "./report.ts";
import type { Comparison, ModelSummary, VariantResults } from "./results.ts";

/**
 * The comparison in words, at the 5% level after Holm's correction: a difference counts only
 * when the corrected p-value is below 0.05 (the 95% interval is uncorrected, so it can
 * exclude zero while the corrected p-value does not reach the level; the sentence says so).
 */
export function verdict(c: Comparison, names: [string, string]): string {
  const [a, b] = names;
  const excludes = c.ci95[0] > 0 || c.ci95[1] < 0;
  if (c.pHolm < 0.05) {
    return `${a} is ${c.difference > 0 ? "above" : "below"} ${b} (Holm-corrected p < 0.05)`;
  }
  return `this run cannot tell ${a} from ${b} at the 5% level after Holm's correction` +
    (excludes ? ` (the uncorrected 95% interval excludes zero)` : "");
}

function accuracy(m: ModelSummary): string {
  const seeds = m.runs.length;
  return `${meanSd(m.test.accuracy)}%` +
    (seeds > 1 ? ` (${seeds} seeds; 95% CI ${interval(m.test.accuracy.ci95)})` : "");
}

function discordant(m: ModelSummary): string {
  return m.runs.map((r) =>
    `${r.versusLogistic?.discordant.join("/") ?? "–"}${r.seed === null ? "" : ` (seed ${r.seed})`}`
  ).join(", ");
}

/** The image model with the best mean validation accuracy (undefined without validation). */
export function bestOnValidation(variant: VariantResults): ModelSummary | undefined {
  const candidates = variant.models.filter((m) => m.kind === "image" && m.validation);
  return candidates.sort((a, b) => b.validation!.accuracy.mean - a.validation!.accuracy.mean)[0];
}

/** Markdown bullet lines, one per comparison the variant can make. */
export function describeFindings(variant: VariantResults): string[] {
  const byId = new Map(variant.models.map((m) => [m.id, m]));
  const logistic = byId.get("logistic-regression");
  const best = bestOnValidation(variant);
  const lines: string[] = [];
  if (best && logistic && best.versusLogistic) {
    const c = best.versusLogistic;
    lines.push(
      `- Best image model on validation accuracy: **${best.id}** ` +
        `(${meanSd(best.validation!.accuracy)}% on validation); on test ${accuracy(best)}, ` +
        `logistic regression on the same embeddings ${accuracy(logistic)}. Difference ` +
        `${formatComparison(c)} points (paired bootstrap over ${c.seeds} seed(s) and the test ` +
        `rows; Holm p = ${formatP(c.pHolm)}): ${verdict(c, [best.id, "logistic regression"])}. ` +
        `Reviews only ${best.id} / only logistic regression classified correctly, per seed: ` +
        `${discordant(best)}.`,
    );
  }
  const images = variant.models.filter((m) => m.kind === "image" && m.versusLogistic);
  const significant = images.filter((m) => m.versusLogistic!.pHolm < 0.05);
  const above = significant.filter((m) => m.versusLogistic!.difference > 0).map((m) => m.id);
  const below = significant.filter((m) => m.versusLogistic!.difference < 0).map((m) => m.id);
  if (images.length > 1 && logistic) {
    lines.push(
      `- Of ${images.length} image models, ${above.length} are above logistic regression and ` +
        `${below.length} below it (Holm-corrected p < 0.05)` +
        (below.length ? ` (below: ${below.join(", ")})` : "") +
        (above.length ? ` (above: ${above.join(", ")})` : "") + ".",
    );
  }
  for (const c of variant.ablations) {
    const ablation = byId.get(c.model), intact = byId.get(c.against);
    if (!ablation || !intact) continue;
    const what = c.model.startsWith("ablation-permuted")
      ? "pixels permuted (layout destroyed)"
      : "random backbone weights (no ImageNet)";
    lines.push(
      `- ${c.against} with ${what}: ${accuracy(ablation)} against ${accuracy(intact)} intact; ` +
        `difference ${formatComparison(c)} points (Holm p = ${formatP(c.pHolm)}): ` +
        `${verdict(c, ["the ablation", "the intact model"])}.`,
    );
  }
  return lines;
}
