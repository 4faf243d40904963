/**
 * Synthetic data for the lib/explain tests: embeddings where only known features carry the
 * label, a fixed hand layout that puts those features on one block of pixels (as DeepInsight
 * would, since they correlate through the label), and the images it makes.
 */
import { Random } from "../lib/random.ts";
import type { ArchitectureSpec } from "../lib/train/mod.ts";
import type { FeatureBatch, Labels, Matrix } from "../lib/types.ts";

/** Features of the synthetic embeddings. */
export const FEATURES = 200;
/** Of which informative. */
export const INFORMATIVE = 20;
/** The layout grid's side. */
export const SIDE = 16;

/**
 * A small conv stack and head for 16×16 images: three 2×2 "same" convolutions (receptive
 * field 4×4, so the last conv layer still resolves the informative block; TensorFlow pads
 * even kernels after, so the CAM grid sits 1.5 pixels off the image grid, which the
 * geometry must undo).
 */
export const SMALL: ArchitectureSpec = {
  name: "explain-small",
  convStack: { channels: [8, 8, 8], kernelSize: 2, padding: "same", dropout: 0 },
  head: { poolSize: 4, inputDropout: 0, hidden: [16], hiddenDropout: [0] },
  lrConv: 3e-3,
  lrHead: 3e-3,
};

/** The informative feature indices (seeded, scattered over 0..199) and the hand layout. */
export function layout(seed = 7): { informative: Set<number>; coords: Int32Array } {
  const random = new Random(seed);
  const informative = new Set(random.permutation(FEATURES).slice(0, INFORMATIVE));
  // Informative features fill a 4×5 block; the others go to random pixels outside it.
  const block: number[] = [];
  for (let r = 3; r < 7; r++) for (let c = 9; c < 14; c++) block.push(r * SIDE + c);
  const inBlock = new Set(block);
  const others = random.permutation(SIDE * SIDE).filter((p) => !inBlock.has(p));
  const coords = new Int32Array(2 * FEATURES);
  let b = 0, o = 0;
  for (let j = 0; j < FEATURES; j++) {
    const p = informative.has(j) ? block[b++] : others[o++];
    coords[2 * j] = Math.floor(p / SIDE);
    coords[2 * j + 1] = p % SIDE;
  }
  return { informative, coords };
}

/**
 * `n` rows: every feature N(0, 1), the informative ones shifted by ±`shift` with the label;
 * and their images `[n, 16, 16, 1]` (each pixel its feature's value, empty pixels 0).
 */
export function synthetic(
  n: number,
  seed: number,
  shift = 0.8,
): { x: Matrix; y: Labels; images: FeatureBatch } {
  const { informative, coords } = layout();
  const random = new Random(seed);
  const y = Uint8Array.from({ length: n }, (_, i) => i % 2);
  const x = new Float32Array(n * FEATURES);
  const images = new Float32Array(n * SIDE * SIDE);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < FEATURES; j++) {
      const v = random.normal() + (informative.has(j) ? (y[i] ? shift : -shift) : 0);
      x[i * FEATURES + j] = v;
      images[i * SIDE * SIDE + coords[2 * j] * SIDE + coords[2 * j + 1]] = v;
    }
  }
  return {
    x: { data: x, shape: [n, FEATURES] },
    y,
    images: { data: images, shape: [n, SIDE, SIDE, 1] },
  };
}
