/**
 * Early stopping (`patience`): training stops once `patience` epochs in a row brought no
 * better validation accuracy (ties broken by lower validation loss), the epochs it ran are
 * those of a run without it, a resumed run stops where the uninterrupted one did (and a
 * checkpoint that already met the rule trains no further), and data-parallel ranks take the
 * same decision.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { ready } from "../lib/tf.ts";
import type { Progress } from "../lib/progress.ts";
import type { EpochRecord, ImageClassifierOptions } from "../lib/train/mod.ts";
import { ImageClassifier, loadCheckpoint } from "../lib/train/mod.ts";
import { featureData, TINY } from "./_train_fixtures.ts";

const train = featureData(96, 1);
/** Validation inputs with labels unrelated to them: accuracy wanders, loss rises as it learns. */
const noisy = { x: featureData(48, 2).x, y: featureData(48, 3).y };
const BATCHES_PER_EPOCH = 6; // 96 rows, batch 16

function withoutTimes(history: EpochRecord[]) {
  return history.map(({ trainSeconds: _s, imagesPerSecond: _r, ...rest }) => rest);
}

/**
 * The rule, written out independently of the estimator: the first epoch that comes
 * `patience` epochs after the best one so far, and that best epoch.
 */
function expectedStop(history: EpochRecord[], patience: number): { stop?: number; best: number } {
  let best = history[0];
  for (const r of history) {
    const acc = r.validationAccuracy!, bestAcc = best.validationAccuracy!;
    if (acc > bestAcc || (acc === bestAcc && r.validationLoss! < best.validationLoss!)) best = r;
    if (r.epoch - best.epoch >= patience) return { stop: r.epoch, best: best.epoch };
  }
  return { best: best.epoch };
}

async function fit(
  options: ImageClassifierOptions,
  validation: { x: typeof train.x; y: Uint8Array } | null = noisy,
) {
  const epochs: number[] = [], progress: Progress[] = [];
  const clf = new ImageClassifier({
    architecture: TINY,
    epochs: 10,
    batchSize: 16,
    progressBar: false,
    onEpoch: (r) => epochs.push(r.epoch),
    onProgress: (p) => progress.push(p),
    ...options,
  });
  await clf.fit(train.x, train.y, validation ?? undefined);
  const out = {
    history: clf.history_,
    selected: clf.selectedEpoch_,
    stoppedEarly: clf.stoppedEarly_,
    resumed: clf.resumedEpochs_,
    weights: clf.network_!.getWeights(),
    epochs,
    progress,
  };
  clf.dispose();
  return out;
}

Deno.test("with nothing to learn, training stops `patience` epochs after the first", async () => {
  await ready("wasm");
  // A zero output kernel that never moves (head rate 0): the logits are the output bias for
  // every input, so every epoch's validation loss and accuracy equal the first's; ties need
  // a strictly lower loss, so epoch 1 stays the best.
  const frozen: ImageClassifierOptions = {
    lrConv: 0,
    lrHead: 0,
    initGain: { hidden: Math.SQRT2, output: 0 },
    seed: 5,
  };
  const clean = featureData(48, 2);
  const early = await fit({ ...frozen, patience: 2 }, clean);
  for (const r of early.history) {
    assertEquals(r.validationLoss, early.history[0].validationLoss);
    assertEquals(r.validationAccuracy, early.history[0].validationAccuracy);
  }
  assertEquals(early.history.map((r) => r.epoch), [1, 2, 3]);
  assertEquals(early.epochs, [1, 2, 3]);
  assertEquals(early.stoppedEarly, true);
  assertEquals(early.selected, 1);
  // Progress counts every batch run, then reports the whole fit done once.
  const total = 10 * BATCHES_PER_EPOCH;
  assertEquals(early.progress.length, 3 * BATCHES_PER_EPOCH + 1);
  assertEquals(early.progress.at(-2), { done: 3 * BATCHES_PER_EPOCH, total });
  assertEquals(early.progress.at(-1), { done: total, total });

  const all = await fit({ ...frozen, epochs: 5, patience: null }, clean);
  assertEquals(all.history.length, 5);
  assertEquals(all.stoppedEarly, false);
  assertEquals(all.selected, 1);
  assertEquals(all.progress.at(-1), { done: 5 * BATCHES_PER_EPOCH, total: 5 * BATCHES_PER_EPOCH });

  // Without a validation set, patience is ignored.
  const blind = await fit({ ...frozen, epochs: 4, patience: 1 }, null);
  assertEquals(blind.history.length, 4);
  assertEquals(blind.stoppedEarly, false);
  assertEquals(blind.selected, 4);

  await assertRejects(() => fit({ patience: 0 }), Error, "patience");
});

Deno.test("an early-stopped run runs the epochs of the full run, up to the rule", async () => {
  await ready("wasm");
  const full = await fit({ seed: 9, patience: null });
  assertEquals(full.history.length, 10);
  const { stop, best } = expectedStop(full.history, 2);
  assert(stop !== undefined && stop < 10, "the full run never meets the rule: change the fixture");
  const early = await fit({ seed: 9, patience: 2 });
  assertEquals(withoutTimes(early.history), withoutTimes(full.history.slice(0, stop)));
  assertEquals(early.stoppedEarly, true);
  assertEquals(early.selected, best);
  console.log(`stopped after epoch ${stop}, kept epoch ${best}`);
});

Deno.test("an early-stopped run resumes to the uninterrupted result and then trains no more", async () => {
  await ready("wasm");
  const root = await Deno.makeTempDir();
  try {
    const options = { seed: 9, patience: 2 };
    const reference = await fit({ ...options, checkpointDir: join(root, "a") });
    const stop = reference.history.length;
    assert(reference.stoppedEarly && stop >= 3, `stopped after epoch ${stop}`);
    // Interrupt after the epoch before the stop: the rule's state (best epoch) must come back
    // from the checkpoint for the resumed run to stop after exactly one more epoch.
    const dir = join(root, "b");
    const controller = new AbortController();
    await assertRejects(() =>
      fit({
        ...options,
        checkpointDir: dir,
        signal: controller.signal,
        onEpoch: (r) => {
          if (r.epoch === stop - 1) controller.abort();
        },
      })
    );
    assertEquals((await loadCheckpoint<{ epochsDone: number }>(dir))?.record.epochsDone, stop - 1);
    const resumed = await fit({ ...options, checkpointDir: dir });
    assertEquals(resumed.resumed, stop - 1);
    assertEquals(resumed.epochs, [stop]);
    assertEquals(withoutTimes(resumed.history), withoutTimes(reference.history));
    assertEquals(resumed.selected, reference.selected);
    assertEquals(resumed.stoppedEarly, true);
    assertEquals(resumed.weights, reference.weights);

    // Its checkpoint already meets the rule: a new fit loads it and trains nothing.
    const again = await fit({ ...options, checkpointDir: dir });
    assertEquals(again.resumed, stop);
    assertEquals(again.epochs, []);
    assertEquals(again.progress, [{ done: 10 * BATCHES_PER_EPOCH, total: 10 * BATCHES_PER_EPOCH }]);
    assertEquals(withoutTimes(again.history), withoutTimes(reference.history));
    assertEquals(again.selected, reference.selected);
    assertEquals(again.stoppedEarly, true);
    assertEquals(again.weights, reference.weights);

    // Patience is part of the run: another one does not resume this checkpoint.
    await assertRejects(
      () => fit({ ...options, patience: 3, checkpointDir: dir }),
      Error,
      "different run",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("data-parallel ranks stop together, where the rule says", async () => {
  await ready("wasm");
  const full = await fit({ seed: 5, patience: null, workers: 2 });
  const { stop, best } = expectedStop(full.history, 2);
  assert(stop !== undefined && stop < 10, "the full run never meets the rule: change the fixture");
  const early = await fit({ seed: 5, patience: 2, workers: 2 });
  assertEquals(withoutTimes(early.history), withoutTimes(full.history.slice(0, stop)));
  assertEquals(early.stoppedEarly, true);
  assertEquals(early.selected, best);
  const total = 10 * BATCHES_PER_EPOCH;
  assertEquals(early.progress.at(-1), { done: total, total });
  console.log(`stopped after epoch ${stop}, kept epoch ${best}`);
});
