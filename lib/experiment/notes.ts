/**
 * What a reader of a run's report needs to know besides the numbers: the settings that
 * differ from the paper and how the comparisons were computed. Every line is derived from
 * the run's config and results; none states a finding.
 *
 * @module
 */
import { BACKBONES } from "../vision/mod.ts";
import { differencesFromPaper } from "./config.ts";
import type { ResolvedConfig } from "./config.ts";
import { architectureOf } from "./features.ts";
import type { VariantResults } from "./results.ts";

function trainingNotes(cfg: ResolvedConfig): string[] {
  const t = cfg.models.training;
  const lines: string[] = [];
  if (t.initGain !== "paper") {
    lines.push(
      `Dense layers are Xavier-initialised with gain ${t.initGain.hidden.toFixed(3)} (hidden) ` +
        `and ${t.initGain.output} (output layer); the official code uses √2 on every layer.`,
    );
  }
  for (const key of ["lrConv", "lrHead"] as const) {
    const rate = t[key];
    if (rate === "paper") continue;
    const official = [
      ...new Set(cfg.models.backbones.map((b) => {
        const a = architectureOf(b);
        return `${a.name} ${a[key]}`;
      })),
    ].join(", ");
    lines.push(
      `${key === "lrConv" ? "Conv-stack" : "Head"} learning rate ${rate} for every model; the ` +
        `official ones: ${official}.`,
    );
  }
  if (t.standardizeFeatures) {
    lines.push(
      `Backbone features are standardised before the conv stack (not in the paper): minus ` +
        `their mean map over the training images, divided by each channel's spread across images.`,
    );
  }
  lines.push(
    `Epochs: at most ${t.epochs} (the paper: 15)` +
      (t.patience !== null
        ? `, stopped early after ${t.patience} epoch(s) without a better validation accuracy`
        : "") +
      `; the kept weights are those of the epoch with the best validation accuracy (the ` +
      `epochs each model ran are in the table).`,
  );
  return lines;
}

function runNotes(variants: VariantResults[]): string[] {
  const lines: string[] = [];
  const padded = new Set<string>(), resumed = new Set<string>();
  for (const v of variants) {
    for (const m of v.models) {
      for (const r of m.runs) {
        if (r.details.padding === "same") padded.add(m.id);
        if ((r.resumedEpochs ?? 0) > 0) resumed.add(r.job);
      }
    }
  }
  if (padded.size) {
    lines.push(
      `"same" padding in the conv stack for ${[...padded].join(", ")}: their feature maps are ` +
        `too small for the paper's unpadded convolutions.`,
    );
  }
  if (resumed.size) lines.push(`Resumed from a checkpoint: ${[...resumed].join(", ")}.`);
  return lines;
}

/** Which backbones are the paper's own networks and which stand in for them. */
function backboneNotes(cfg: ResolvedConfig): string[] {
  const own = cfg.models.backbones.filter((b) => BACKBONES[b]?.torchvision !== undefined);
  const standIns = cfg.models.backbones.filter((b) => BACKBONES[b]?.torchvision === undefined);
  return [
    ...(own.length
      ? [`The paper's own networks, from torchvision's published checkpoints: ${own.join(", ")}.`]
      : []),
    ...(standIns.length
      ? [
        `Backbones stand in for the paper's networks (${
          standIns.map((b) => `${b} → ${(BACKBONES[b]?.standsInFor ?? []).join("/") || "none"}`)
            .join(", ")
        }).`,
      ]
      : []),
  ];
}

/** The notes of a run (see the module doc). */
export function experimentNotes(cfg: ResolvedConfig, variants: VariantResults[]): string[] {
  const upsample = cfg.models.upsample;
  const differences = differencesFromPaper(cfg);
  return [
    `Config: ${cfg.origin}${cfg.description ? ` (${cfg.description})` : ""}. Settings that ` +
    `differ from the paper's: ${differences.length ? differences.join("; ") : "none"}.`,
    `Seeds: ${cfg.seeds.join(", ")}; every trained model (image models, MLP, ablations) ran ` +
    `once per seed (initialisation, shuffling, dropout, the permutation and the random ` +
    `weights); the split and the layout are fixed. Logistic regression is deterministic and ` +
    `was fitted once.`,
    `Intervals: per seed, 95% Wilson intervals of the test accuracy; over seeds, the mean ± ` +
    `standard deviation and a 95% Student-t interval of the mean. Comparisons (against ` +
    `logistic regression; each ablation against its intact model) use a paired bootstrap ` +
    `resampling seeds and test rows together, with Holm-corrected p-values within each family.`,
    `Images are ${cfg.image.pixels}×${cfg.image.pixels}` +
    (upsample !== 1 ? `, upsampled ×${upsample}` : ", not upsampled (the paper: ×3 to 150×150)") +
    `; the scaler and layout were fitted on ${
      cfg.image.fitOn === "all"
        ? "all rows (transductive, as the official code)"
        : "the training rows only"
    }.`,
    (cfg.models.features === "cache"
      ? `Backbone features are computed once per image and cached; `
      : `The backbone runs on every batch (end to end, frozen); `) +
    (cfg.models.normalization === "imagenet"
      ? `its input is the [0, 1] image through the backbone's own ImageNet scaling, not the ` +
        `paper's z-normalisation.`
      : cfg.models.normalization === "batch"
      ? `z-normalisation per batch, as the paper.`
      : `the z-normalisation uses one mean and standard deviation over the training images ` +
        `instead of per batch (the paper).`),
    ...trainingNotes(cfg),
    ...backboneNotes(cfg),
    ...runNotes(variants),
  ];
}
