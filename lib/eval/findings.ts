/**
 * What a run says about the paper's idea, in words: the best image model against logistic
 * regression on the same embeddings, and each ablation against its intact model. Shared by
 * notebook 6 and the `reproduce` report so both say the same thing.
 *
 * @module
 */
import type { ExperimentResults, ModelResult } from "./experiment.ts";

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function interval(m: ModelResult): string {
  const [low, high] = m.metrics.test.accuracyCI95;
  return `[${pct(low)}, ${pct(high)}]`;
}

function signed(x: number): string {
  return `${x >= 0 ? "+" : ""}${pct(x)}`;
}

/** Markdown bullet lines, one per comparison the run can make. */
export function describeFindings(results: ExperimentResults): string[] {
  const byName = new Map(results.models.map((m) => [m.name, m]));
  const logistic = byName.get("logistic-regression");
  const imageModels = results.models.filter((m) => m.kind === "image");
  const best =
    [...imageModels].sort((a, b) => b.metrics.test.accuracy - a.metrics.test.accuracy)[0];
  const lines: string[] = [];
  if (best && logistic && best.versusLogistic) {
    const vs = best.versusLogistic;
    lines.push(
      `- Best image model: **${best.name}**, ${pct(best.metrics.test.accuracy)} ${
        interval(best)
      }; ` +
        `logistic regression on the same embeddings: ${pct(logistic.metrics.test.accuracy)} ` +
        `${interval(logistic)}. Difference ${signed(vs.accuracyDifference)} (McNemar p = ` +
        `${vs.pValue.toPrecision(2)}; ${vs.discordant[0]} reviews only the image model got ` +
        `right, ${vs.discordant[1]} only logistic regression).`,
    );
  }
  const ablationBackbone = results.config.ablations.backbone;
  const intact = byName.get(ablationBackbone);
  const ablations = [
    [`ablation-permuted-pixels-${ablationBackbone}`, "pixels permuted (t-SNE layout destroyed)"],
    [`ablation-random-init-${ablationBackbone}`, "random backbone weights (no ImageNet)"],
  ] as const;
  for (const [name, what] of ablations) {
    const ablation = byName.get(name);
    if (!ablation || !intact) continue;
    const change = ablation.metrics.test.accuracy - intact.metrics.test.accuracy;
    lines.push(
      `- ${ablationBackbone} with ${what}: ${pct(ablation.metrics.test.accuracy)} ` +
        `${interval(ablation)} against ${pct(intact.metrics.test.accuracy)} ${interval(intact)} ` +
        `intact (${signed(change)}).`,
    );
  }
  return lines;
}
