/**
 * The study's report: the answers table first (each headline comparison with its effect,
 * 95% interval and Holm-corrected p-value, and a sentence computed from them), then a section
 * per question with its comparisons, figures (learning curves with interval bands, paired
 * differences per seed, layouts side by side) and the arms it used, then how the study was
 * made (calls, time, cuts, the config a larger machine runs). Every sentence of findings is
 * computed here from the numbers in {@link StudyResults}.
 *
 * @module
 */
import { join } from "node:path";
import { intervalChart, lineChart, scatter } from "../plot/charts.ts";
import type { LinePoint } from "../plot/charts.ts";
import type { Figure } from "../plot/figure.ts";
import { writeAtomic } from "../integrity.ts";
import type { ArmResults, StudyComparison, StudyQuestionResults, StudyResults } from "./study.ts";
import { accuracyText } from "./study.ts";

/** Significance level of the verdicts (Holm-corrected p-values). */
export const STUDY_ALPHA = 0.05;

const pct = (v: number, sign = true) => `${sign && v > 0 ? "+" : ""}${(100 * v).toFixed(1)}`;
const pText = (p: number) => (p < 0.001 ? "<0.001" : p.toFixed(3));
const minutes = (s: number) => (s < 90 ? `${s.toFixed(0)} s` : `${(s / 60).toFixed(1)} min`);

/**
 * One sentence on a comparison, from its numbers: a difference whose Holm-corrected p-value is
 * under {@link STUDY_ALPHA} is stated with its direction; otherwise "no detectable difference",
 * with the interval that bounds it.
 */
export function comparisonVerdict(c: StudyComparison): string {
  const ci = `[${pct(c.ci95[0])}, ${pct(c.ci95[1])}] points`;
  if (c.pHolm < STUDY_ALPHA) {
    return `${c.difference > 0 ? "higher" : "lower"} by ${
      Math.abs(100 * c.difference).toFixed(1)
    } ` +
      `points (95% interval ${ci}, Holm p ${pText(c.pHolm)})`;
  }
  return `no detectable difference: ${pct(c.difference)} points, 95% interval ${ci}, ` +
    `Holm p ${pText(c.pHolm)}`;
}

function comparisonRow(c: StudyComparison): string {
  const seeds = c.perSeed.map((s) => `${s.seed ?? "–"}: ${pct(s.difference)}`).join(", ");
  return `| ${c.label} | ${pct(c.difference)} | [${pct(c.ci95[0])}, ${pct(c.ci95[1])}] | ` +
    `${pText(c.pValue)} | ${pText(c.pHolm)} | ${seeds} |`;
}

const COMPARISON_HEADER = "| comparison | Δ acc (points) | 95% CI | p | p (Holm) | per seed |\n" +
  "|---|---|---|---|---|---|";

/** One row of the answers table. */
export type AnswerRow = {
  /** Question id and title. */
  question: string;
  /** The headline comparison. */
  comparison: string;
  /** Δ test accuracy in points with its 95% interval. */
  "Δ test acc (points) [95% CI]": string;
  /** Holm-corrected p-value. */
  "p (Holm)": string;
  /** `higher`, `lower` or `no detectable difference` (Holm p < {@link STUDY_ALPHA}). */
  answer: string;
};

/** The answers table: every headline comparison of every question, in order. */
export function answerRows(results: StudyResults): AnswerRow[] {
  return results.questions.flatMap((q) =>
    q.comparisons.filter((c) => c.headline).map((c) => ({
      question: `${q.id} ${q.title}`,
      comparison: c.label,
      "Δ test acc (points) [95% CI]": `${pct(c.difference)} [${pct(c.ci95[0])}, ` +
        `${pct(c.ci95[1])}]`,
      "p (Holm)": pText(c.pHolm),
      answer: c.pHolm < STUDY_ALPHA
        ? (c.difference > 0 ? "higher" : "lower")
        : "no detectable difference",
    }))
  );
}

function answersTable(results: StudyResults): string[] {
  const rows = answerRows(results);
  const columns: (keyof AnswerRow)[] = [
    "question",
    "comparison",
    "Δ test acc (points) [95% CI]",
    "p (Holm)",
    "answer",
  ];
  return [
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${columns.map((c) => r[c]).join(" | ")} |`),
  ];
}

/** Figures of a question: paired differences, and its curve or layouts. */
export function questionFigures(
  q: StudyQuestionResults,
  arms: ArmResults[],
): { file: string; caption: string; figure: Figure }[] {
  const figures: { file: string; caption: string; figure: Figure }[] = [];
  const shown = q.comparisons.filter((c) => !q.curve || c.headline || !c.label.includes(" at "));
  figures.push({
    file: `${q.id}-differences.svg`,
    caption: "Paired differences: the large dot is the mean over seeds and test rows, the bar " +
      "its 95% bootstrap interval (seeds and test rows resampled together), the small dots each " +
      "seed's own difference",
    figure: intervalChart(
      shown.map((c) => ({
        label: c.label,
        value: 100 * c.difference,
        low: 100 * c.ci95[0],
        high: 100 * c.ci95[1],
        points: c.perSeed.map((s) => 100 * s.difference),
        group: c.pHolm < STUDY_ALPHA ? "Holm p < 0.05" : "not significant",
      })),
      {
        title: `${q.id} ${q.title}: Δ test accuracy (points)`,
        xLabel: "Δ test accuracy (points)",
        reference: 0,
      },
    ),
  });
  if (q.curve) {
    const points: LinePoint[] = q.curve.map((p) => ({
      x: p.train,
      y: 100 * p.accuracy.mean,
      series: p.model,
      ...(p.accuracy.ci95 ? { low: 100 * p.accuracy.ci95[0], high: 100 * p.accuracy.ci95[1] } : {}),
    }));
    figures.push({
      file: `${q.id}-learning-curve.svg`,
      caption: "Test accuracy against training reviews (mean over seeds; band: 95% t-interval " +
        "over seeds; deterministic models have none)",
      figure: lineChart(points, {
        title: "Learning curves: test accuracy (%) by training reviews",
        xLabel: "training reviews",
        yLabel: "test accuracy (%)",
      }),
    });
  }
  for (const name of q.layouts ?? []) {
    const arm = arms.find((a) => a.name === name);
    if (!arm?.layoutPoints) continue;
    figures.push({
      file: `${q.id}-layout-${name}.svg`,
      caption: `Layout of arm ${name} (${arm.layout}): one dot per embedding feature`,
      figure: scatter(arm.layoutPoints, {
        title: `${name}: ${arm.layout}`,
        equalAspect: true,
        radius: 1.5,
        width: 320,
        height: 320,
      }),
    });
  }
  return figures;
}

function armsTable(arms: ArmResults[], names?: Set<string>): string[] {
  const lines = [
    "| arm | what | train | layout | model: test acc % (mean ± sd over seeds) [epochs kept/run] | jobs trained / read | time |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const a of arms.filter((a) => !names || names.has(a.name))) {
    const models = Object.entries(a.models).map(([id, m]) =>
      `${id} ${accuracyText(m)}${m.epochs ? ` [${m.epochs.join(" ")}]` : ""}`
    ).join("; ");
    lines.push(
      `| ${a.name} | ${a.description} | ${a.train} | ${a.layout} | ${models} | ` +
        `${a.jobs.computed} / ${a.jobs.cached} | ${minutes(a.seconds)} |`,
    );
  }
  return lines;
}

function armsOf(q: StudyQuestionResults): Set<string> {
  const names = new Set<string>();
  for (const c of q.comparisons) for (const t of c.terms) names.add(t.ref.split("/")[0]);
  for (const p of q.curve ?? []) names.add(p.arm);
  return names;
}

function questionSection(q: StudyQuestionResults, results: StudyResults): string[] {
  const lines = [`## ${q.id} ${q.title}`, "", `*${q.question}*`, ""];
  for (const c of q.comparisons.filter((c) => c.headline)) {
    lines.push(`- ${c.label}: ${comparisonVerdict(c)}.`);
  }
  lines.push("", COMPARISON_HEADER, ...q.comparisons.map(comparisonRow), "");
  for (const f of questionFigures(q, results.arms)) {
    lines.push(`![${f.caption}](${f.file})`, "", `*${f.caption}.*`, "");
  }
  lines.push("Arms:", "", ...armsTable(results.arms, armsOf(q)), "");
  return lines;
}

/** The `--config` argument that runs a study file: its name when shipped, else its path. */
function studyConfigArg(file: string): string {
  const shipped = /^tools\/configs\/study\/([^/]+)\.json$/.exec(file);
  return shipped ? shipped[1] : file;
}

/** Distinct jobs of the study grouped by the code version that trained them. */
export function jobMakers(
  results: StudyResults,
): { code: string; jobs: number; first: string; last: string; fitSeconds: number }[] {
  const seen = new Map<string, { code: string; at: string; fit: number }>();
  for (const arm of results.arms) {
    for (const model of arm.experiment.variants.flatMap((v) => v.models)) {
      for (const run of model.runs) {
        const p = run.provenance;
        seen.set(`${run.job}|${p.madeAt}`, {
          code: p.code,
          at: p.madeAt,
          fit: run.timings.fitSeconds,
        });
      }
    }
  }
  const byCode = new Map<
    string,
    { code: string; jobs: number; first: string; last: string; fitSeconds: number }
  >();
  for (const { code, at, fit } of seen.values()) {
    const m = byCode.get(code) ?? { code, jobs: 0, first: at, last: at, fitSeconds: 0 };
    m.jobs++;
    m.fitSeconds += fit;
    if (at < m.first) m.first = at;
    if (at > m.last) m.last = at;
    byCode.set(code, m);
  }
  return [...byCode.values()].sort((a, b) => a.first.localeCompare(b.first));
}

function madeSection(results: StudyResults): string[] {
  const total = results.calls.reduce((s, c) => s + c.seconds, 0);
  const lines = [
    "## How this was made",
    "",
    `Study file \`${results.file}\` (SHA-256 with its base config ` +
    `${results.specSha256.slice(0, 12)}), run by \`deno task study --config ${
      studyConfigArg(results.file)
    }\`. ` +
    `Test set: ${results.test.rows} reviews (${results.test.positives} positive), the same ` +
    `rows in every arm (fingerprint ${results.test.sha256.slice(0, 12)}).`,
    "",
    `Calls that made these results (${minutes(total)} in all):`,
    "",
    "| call started | code | wall time | jobs trained | jobs read from the cache |",
    "|---|---|---|---|---|",
    ...results.calls.map((c) =>
      `| ${c.startedAt} | ${c.code} | ${minutes(c.seconds)} | ${c.computed} | ${c.cached} |`
    ),
    "",
    "(A job two arms share counts in each.) Every distinct job by the call that trained it " +
    "(from each job's own record; this includes calls stopped before they wrote results):",
    "",
    "| code | jobs | trained between | fit time (sum over jobs) |",
    "|---|---|---|---|",
    ...jobMakers(results).map((m) =>
      `| ${m.code} | ${m.jobs} | ${m.first} – ${m.last} | ${minutes(m.fitSeconds)} |`
    ),
    "",
    "Method: each comparison is a contrast of test accuracies (model minus what it is compared " +
    "against; for a change of gap, a difference of differences) over seeds and test rows; its " +
    "interval and p-value come from a paired bootstrap that resamples seeds and test rows " +
    "together (10,000 resamples), every model evaluated on the same resampled rows. " +
    "Deterministic models (logistic regression, TF-IDF) are one fit, paired with every seed. " +
    "p-values are Holm-corrected over all comparisons within a question; answers use " +
    `p (Holm) < ${STUDY_ALPHA}.`,
    "",
    ...(results.tuning?.length
      ? [
        "Tuning budget per model family (chosen on the validation rows only):",
        "",
        ...results.tuning.map((t) => `- ${t}`),
        "",
      ]
      : []),
    "Cuts on this machine (what the study's design asks for and this run does not do):",
    "",
    ...results.cuts.map((c) => `- ${c}`),
    "",
  ];
  if (results.full) {
    lines.push(
      `A larger machine runs the uncut study: \`deno task study --config ` +
        `${results.full.replace(/\.json$/, "")}\` (\`tools/configs/study/${results.full}\`).`,
      "",
    );
  }
  return lines;
}

/** The report's markdown. */
export function studyReportMarkdown(results: StudyResults): string {
  return [
    `# Study: ${results.name}`,
    "",
    results.description,
    "",
    "## Answers",
    "",
    ...answersTable(results),
    "",
    `Δ: the first model's test accuracy minus the second's, in points (mean over seeds and ` +
    `${results.test.rows} test reviews). "no detectable difference": Holm p ≥ ${STUDY_ALPHA}.`,
    "",
    ...results.questions.flatMap((q) => questionSection(q, results)),
    "## All arms",
    "",
    ...armsTable(results.arms),
    "",
    ...madeSection(results),
  ].join("\n");
}

/** Writes `metrics.json`, the figures and `report.md` into `dir`. */
export async function writeStudyResults(dir: string, results: StudyResults): Promise<void> {
  await writeAtomic(join(dir, "metrics.json"), JSON.stringify(results, null, 1) + "\n");
  for (const q of results.questions) {
    for (const f of questionFigures(q, results.arms)) await f.figure.save(join(dir, f.file));
  }
  await writeAtomic(join(dir, "report.md"), studyReportMarkdown(results));
}
