/**
 * The study (`lib/experiment/study.ts`, `tools/study.ts`): study files are checked before
 * anything runs; comparisons across arms are the contrasts of the arms' own accuracies, paired
 * by seed; and a tiny study end to end writes its answers, keeps its jobs beside the results
 * and resumes from them alone.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { holmAdjust } from "../lib/eval/stats.ts";
import { answerQuestion, loadStudy } from "../lib/experiment/study.ts";
import type { ArmResults, StudyResults } from "../lib/experiment/study.ts";
import { comparisonVerdict as verdict, jobMakers } from "../lib/experiment/study_report.ts";
import { shippedConfigs } from "../lib/experiment/config.ts";
import { runTool, shared, type ToolOutput } from "./_shared.ts";

const archive = shared("data", "aclImdb_v1-labelled.tar.gz");
const models = shared("models", "darknet_tiny", "model.json");

async function studyFiles(
  dir: string,
  base: Record<string, unknown>,
  study: Record<string, unknown>,
): Promise<string> {
  await Deno.writeTextFile(join(dir, "base.json"), JSON.stringify(base));
  const path = join(dir, "tiny-study.json");
  await Deno.writeTextFile(path, JSON.stringify({ base: "base.json", cuts: [], ...study }));
  return path;
}

const BASE = {
  schemaVersion: 2,
  name: "unused",
  data: { trainSize: 120, testSize: 80 },
  image: { pixels: 16, tsne: { nIter: 250 } },
  models: { backbones: ["darknet_tiny"], training: { epochs: 1 }, workers: 2 },
  seeds: [1, 2],
  baselines: { logistic: true, mlp: false },
  ablations: { backbone: "darknet_tiny", permutedPixels: false, randomBackbone: false },
};

Deno.test("loadStudy: every arm is validated and every comparison must name a planned model", async () => {
  const dir = await Deno.makeTempDir({ prefix: "study-load-" });
  try {
    const arms = {
      a: { description: "base" },
      p: { description: "permuted", ablations: { permutedPixels: true } },
    };
    const ok = await studyFiles(dir, BASE, {
      name: "s",
      description: "d",
      arms,
      questions: [{
        id: "q",
        title: "t",
        question: "?",
        comparisons: [{
          label: "l",
          model: "a/darknet_tiny",
          against: "p/ablation-permuted-pixels-darknet_tiny",
        }],
      }],
    });
    const study = await loadStudy(ok);
    assertEquals([...study.arms.keys()], ["a", "p"]);
    // Every arm runs under the study's name, so they share one cache.
    assertEquals([...study.arms.values()].map((c) => c.name), ["s", "s"]);
    assertEquals(study.arms.get("p")!.ablations.permutedPixels, true);

    const badRef = await studyFiles(dir, BASE, {
      name: "s",
      description: "d",
      arms,
      questions: [{
        id: "q",
        title: "t",
        question: "?",
        comparisons: [
          { label: "l", model: "a/ablation-permuted-pixels-darknet_tiny", against: "x/mlp" },
        ],
      }],
    });
    const e = await assertRejects(() => loadStudy(badRef), Error, "2 problem(s)");
    assertStringIncludes(
      e.message,
      `arm "a" plans no model "ablation-permuted-pixels-darknet_tiny"`,
    );
    assertStringIncludes(e.message, `no arm "x" (arms: a, p)`);

    const badArm = await studyFiles(dir, BASE, {
      name: "s",
      description: "d",
      arms: { a: { description: "x", image: { pixels: -3 } } },
      questions: [],
    });
    await assertRejects(() => loadStudy(badArm), Error, `arm "a"`);
    await assertRejects(() => loadStudy(join(dir, "missing.json")), Error, "cannot read the study");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the shipped study loads, and its files are not listed as experiment configs", async () => {
  const study = await loadStudy("study");
  assert(study.arms.size >= 10);
  assert(study.spec.questions.length === 6);
  assert(!shippedConfigs().some((name) => name.startsWith("study/")));
  const full = await loadStudy(study.spec.full!);
  assert(full.arms.size >= study.arms.size);
});

/** Test correctness of `n` rows: right where `pattern(i)` holds. */
function rows(n: number, pattern: (i: number) => boolean): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (pattern(i) ? 1 : 0));
}

Deno.test("answerQuestion: pairs and gap changes are contrasts of accuracies, paired by seed", () => {
  const n = 200;
  // Arm "small" has seeds 1, 2, 3; arm "big" seeds 1, 2 (a seed only one side has is dropped).
  const table = new Map([
    ["small/img", [
      { seed: 1, correct: rows(n, (i) => i % 2 === 0) }, // 0.50
      { seed: 2, correct: rows(n, (i) => i % 4 !== 0) }, // 0.75
      { seed: 3, correct: rows(n, () => false) }, // 0.00 (seed 3: not in "big")
    ]],
    ["small/lr", [{ seed: null, correct: rows(n, (i) => i % 5 !== 0) }]], // 0.80
    ["big/img", [
      { seed: 1, correct: rows(n, (i) => i % 10 !== 0) }, // 0.90
      { seed: 2, correct: rows(n, (i) => i % 5 !== 0) }, // 0.80
    ]],
    ["big/lr", [{ seed: null, correct: rows(n, (i) => i % 20 !== 0) }]], // 0.95
  ]);
  const q = answerQuestion(
    {
      id: "q",
      title: "t",
      question: "?",
      comparisons: [
        { label: "img big vs small", model: "big/img", against: "small/img", headline: true },
        {
          label: "gap change",
          gapChange: { model: "img", against: "lr", from: "small", to: "big" },
        },
      ],
    },
    [] as ArmResults[],
    table,
  );
  const [pair, gap] = q.comparisons;
  // Seeds 1 and 2 only: (0.90 − 0.50 + 0.80 − 0.75) / 2
  assertAlmostEquals(pair.difference, (0.4 + 0.05) / 2, 1e-12);
  assertEquals(pair.perSeed.map((s) => s.seed), [1, 2]);
  assertAlmostEquals(pair.perSeed[0].difference, 0.4, 1e-12);
  assertEquals(pair.headline, true);
  // (img − lr) at big minus at small, per seed: seed 1 (0.90 − 0.95) − (0.50 − 0.80) = 0.25,
  // seed 2 (0.80 − 0.95) − (0.75 − 0.80) = −0.10.
  assertAlmostEquals(gap.perSeed[0].difference, 0.25, 1e-12);
  assertAlmostEquals(gap.perSeed[1].difference, -0.1, 1e-12);
  assertAlmostEquals(gap.difference, 0.075, 1e-12);
  assertEquals(gap.terms.map((t) => [t.ref, t.weight]), [
    ["big/img", 1],
    ["big/lr", -1],
    ["small/img", -1],
    ["small/lr", 1],
  ]);
  // Holm over the question's comparisons.
  assertEquals(q.comparisons.map((c) => c.pHolm), holmAdjust(q.comparisons.map((c) => c.pValue)));
  assert(pair.ci95[0] <= pair.difference && pair.difference <= pair.ci95[1]);
  // The verdict follows the numbers: significant here, and says which way.
  assertStringIncludes(
    verdict(pair),
    pair.pHolm < 0.05 ? "higher by 22.5 points" : "no detectable",
  );
  assertStringIncludes(verdict({ ...pair, pHolm: 0.2 }), "no detectable difference: +22.5 points");
  assertStringIncludes(verdict({ ...pair, difference: -0.05, pHolm: 0.01 }), "lower by 5.0 points");
});

function study(args: string[], data: string): Promise<ToolOutput> {
  return runTool("study.ts", args, data);
}

Deno.test({
  name: "study: a tiny study answers its questions, keeps its jobs and resumes from them alone",
  ignore: archive.ignore || models.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "study-test-" });
    const cache = join(dir, "cache");
    const path = await studyFiles(dir, {
      ...BASE,
      data: { ...BASE.data, source: archive.path },
      cacheDir: cache,
    }, {
      name: "tiny-study",
      description: "A tiny study.",
      cuts: ["everything"],
      arms: {
        a: { description: "120 reviews" },
        p: {
          description: "permuted",
          baselines: { logistic: true, mlp: false },
          ablations: { permutedPixels: true },
        },
        b: { description: "200 reviews", data: { trainSize: 200 } },
      },
      questions: [
        {
          id: "q1",
          title: "Data",
          question: "Does the gap shrink?",
          curve: {
            arms: ["a", "b"],
            models: ["logistic-regression", "darknet_tiny"],
            against: "logistic-regression",
          },
          comparisons: [{
            label: "gap change",
            gapChange: {
              model: "darknet_tiny",
              against: "logistic-regression",
              from: "a",
              to: "b",
            },
            headline: true,
          }],
        },
        {
          id: "q2",
          title: "Layout",
          question: "Does the layout matter?",
          layouts: ["a"],
          comparisons: [{
            label: "intact vs permuted",
            model: "a/darknet_tiny",
            against: "p/ablation-permuted-pixels-darknet_tiny",
            headline: true,
          }],
        },
      ],
    });
    try {
      const first = await study(["--config", path, "--out", dir], join(dir, "data"));
      assertEquals(first.code, 0, first.stderr);
      const out = join(dir, "tiny-study");
      const results = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      ) as StudyResults;
      // Same test rows everywhere; the permuted arm read the intact model from the shared cache.
      assertEquals(results.test.rows, 80);
      const arm = (name: string) => results.arms.find((a) => a.name === name)!;
      assertEquals(arm("p").jobs, { computed: 2, cached: 3 });
      // Each comparison equals the contrast of the arms' own accuracies (evaluateBinary's,
      // computed per run), averaged over the seeds both sides have.
      const acc = (ref: string) => {
        const [a, m] = ref.split("/");
        const model = arm(a).models[m];
        return model.accuracy.reduce((s, v) => s + v, 0) / model.accuracy.length;
      };
      for (const q of results.questions) {
        for (const c of q.comparisons) {
          const expected = c.terms.reduce((s, t) => s + t.weight * acc(t.ref), 0);
          assertAlmostEquals(c.difference, expected, 1e-9, c.label);
          assertEquals(c.perSeed.map((s) => s.seed), [1, 2], c.label);
        }
      }
      assertEquals(results.questions[0].curve!.map((p) => [p.arm, p.train, p.model]), [
        ["a", 120, "logistic-regression"],
        ["a", 120, "darknet_tiny"],
        ["b", 200, "logistic-regression"],
        ["b", 200, "darknet_tiny"],
      ]);
      const report = await Deno.readTextFile(join(out, "report.md"));
      assert(report.indexOf("## Answers") < report.indexOf("## q1 Data"), "answers come first");
      for (const label of ["gap change", "intact vs permuted"]) assertStringIncludes(report, label);
      for (const file of ["q1-learning-curve.svg", "q1-differences.svg", "q2-layout-a.svg"]) {
        assert(existsSync(join(out, file)), file);
        assertStringIncludes(report, `](${file})`);
      }
      // Every distinct job's result file is kept beside the results: a, b: 1 logistic + 2
      // images each; p: 2 permuted (its logistic and intact models are a's).
      const kept = [...Deno.readDirSync(join(out, "jobs"))].map((e) => e.name);
      assertEquals(kept.length, 8, kept.join(" "));
      // The report's table of jobs by the call that trained them counts each distinct job once.
      assertEquals(jobMakers(results).map((m) => m.jobs), [8]);

      // Resume from the kept jobs alone: the run's cache of jobs is gone.
      await Deno.remove(join(cache, "jobs"), { recursive: true });
      const second = await study(["--config", path, "--out", dir], join(dir, "data"));
      assertEquals(second.code, 0, second.stderr);
      const again = JSON.parse(await Deno.readTextFile(join(out, "metrics.json"))) as StudyResults;
      assertEquals(again.calls.length, 2);
      assertEquals(again.calls[1].computed, 0);
      assertEquals(
        again.questions.map((q) => q.comparisons),
        results.questions.map((q) => q.comparisons),
      );
      assertStringIncludes(second.stderr, "read 8 finished job(s)");

      // --report writes the same report from metrics.json alone.
      const before = await Deno.readTextFile(join(out, "report.md"));
      await Deno.remove(join(out, "report.md"));
      const report2 = await study(["--config", path, "--out", dir, "--report"], join(dir, "data"));
      assertEquals(report2.code, 0, report2.stderr);
      assertEquals(await Deno.readTextFile(join(out, "report.md")), before);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
