/**
 * Shared fixtures of the training tests: a tiny architecture, synthetic data with a
 * learnable signal, seeded values and a run on both TF.js backends for the kernel tests, and
 * (run as a script) a child training run that the resume test kills.
 *
 *     deno run -A tests/_train_fixtures.ts CHECKPOINT_DIR
 *
 * trains the resume fixture with checkpoints in CHECKPOINT_DIR and, once the first
 * checkpoint is on disk and the second epoch has started, blocks until it is killed.
 */
import { ready, tf } from "../lib/tf.ts";
import type { ArchitectureSpec } from "../lib/train/mod.ts";
import { ImageClassifier } from "../lib/train/mod.ts";
import { Random } from "../lib/random.ts";
import type { FeatureBatch, ImageBatch, Labels } from "../lib/types.ts";

/** `n` values in [−1, 1) from a linear congruential generator seeded with `seed`. */
export function lcgValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/**
 * Runs `f` on the wasm backend (with whatever kernels are installed) and on the cpu backend
 * (TF.js's reference kernels) with the same inputs; returns [wasm, cpu] outputs and leaves
 * wasm current.
 */
export async function onBothBackends(
  f: () => tf.Tensor | tf.Tensor[],
): Promise<[Float32Array[], Float32Array[]]> {
  const results: Float32Array[][] = [];
  for (const backend of ["wasm", "cpu"] as const) {
    await ready(backend);
    const out = f();
    const list = Array.isArray(out) ? out : [out];
    results.push(await Promise.all(list.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose(list);
  }
  await ready("wasm");
  return [results[0], results[1]];
}

/** ‖a − b‖ / ‖b‖ (lengths must match). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} and ${b.length}`);
  let err = 0, norm = 0;
  for (let i = 0; i < a.length; i++) {
    err += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(err / Math.max(norm, 1e-30));
}

/** A small architecture of the paper's shape (4 conv blocks, pool, MLP head). */
export const TINY: ArchitectureSpec = {
  name: "tiny",
  convStack: { channels: [6, 6, 6, 6], kernelSize: 3, padding: "auto", dropout: 0.1 },
  head: { poolSize: 3, inputDropout: 0.1, hidden: [16, 8], hiddenDropout: [0.2, 0] },
  lrConv: 5e-3,
  lrHead: 5e-3,
};

/**
 * Grayscale 12×12 images in [0, 1]: uniform noise in [0, 0.6], plus 0.4 on a 4×4 patch at
 * the top left (label 1) or the bottom right (label 0).
 */
export function patchImages(n: number, seed: number): { images: ImageBatch; labels: Labels } {
  const random = new Random(seed);
  const size = 12;
  const data = new Float32Array(n * size * size);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const r0 = labels[i] ? 1 : 7, c0 = labels[i] ? 1 : 7;
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        const inPatch = r >= r0 && r < r0 + 4 && c >= c0 && c < c0 + 4;
        data[(i * size + r) * size + c] = 0.6 * random.next() + (inPatch ? 0.4 : 0);
      }
    }
  }
  return { images: { data, shape: [n, size, size] }, labels };
}

/** Feature maps `[n, 6, 6, 3]` whose channel 0 is brighter at the top for label 1. */
export function featureData(n: number, seed: number): { x: FeatureBatch; y: Labels } {
  const random = new Random(seed);
  const [h, w, c] = [6, 6, 3];
  const data = new Float32Array(n * h * w * c);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = random.next() < 0.5 ? 1 : 0;
    for (let r = 0; r < h; r++) {
      for (let q = 0; q < w; q++) {
        for (let k = 0; k < c; k++) {
          const signal = k === 0 && (y[i] ? r < 3 : r >= 3) ? 0.5 : 0;
          data[((i * h + r) * w + q) * c + k] = random.normal() + signal;
        }
      }
    }
  }
  return { x: { data, shape: [n, h, w, c] }, y };
}

/** The resume fixture: data and options shared by the test and the child process. */
export function resumeFixture(checkpointDir: string) {
  const train = featureData(96, 1);
  const validation = featureData(48, 2);
  const options = {
    architecture: TINY,
    epochs: 3,
    batchSize: 16,
    seed: 5,
    checkpointDir,
    progressBar: false,
  };
  return { train, validation, options };
}

if (import.meta.main) {
  await ready();
  const dir = Deno.args[0];
  const { train, validation, options } = resumeFixture(dir);
  const batchesPerEpoch = Math.ceil(train.x.shape[0] / options.batchSize);
  const clf = new ImageClassifier({
    ...options,
    onProgress: ({ done }) => {
      if (done === batchesPerEpoch + 1) {
        // Epoch 1's checkpoint is on disk and epoch 2 has begun: wait to be killed.
        console.log("waiting");
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
      }
    },
  });
  await clf.fit(train.x, train.y, validation);
  console.log("finished without being killed");
}
