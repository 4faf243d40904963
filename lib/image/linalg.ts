/**
 * Small dense linear algebra for the image stage: symmetric eigen-decomposition (Jacobi),
 * column orthonormalisation, and a randomized PCA of many long vectors whose large
 * products run on the TensorFlow.js wasm backend.
 *
 * @module
 */
import { Random } from "../random.ts";
import { ready, tf } from "../tf.ts";
import type { Matrix } from "../types.ts";

/** Eigenvalues (descending) and eigenvectors (columns of a row-major `m × m` matrix). */
export interface Eigen {
  /** Eigenvalues, largest first. */
  values: Float64Array;
  /** Row-major `m × m`; column `k` is the eigenvector of `values[k]`. */
  vectors: Float64Array;
}

/** Eigen-decomposition of a symmetric row-major `m × m` matrix by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: ArrayLike<number>, m: number): Eigen {
  const a = Float64Array.from(matrix as ArrayLike<number>);
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        const x = a[i * m + j] * a[i * m + j];
        total += x;
        if (i !== j) off += x;
      }
    }
    if (off <= 1e-30 * Math.max(total, 1e-300)) break;
    for (let p = 0; p < m - 1; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q];
        if (Math.abs(apq) < 1e-300) continue;
        const app = a[p * m + p], aqq = a[q * m + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p], akq = a[k * m + q];
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k], aqk = a[q * m + k];
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = v[k * m + p], vkq = v[k * m + q];
          v[k * m + p] = c * vkp - s * vkq;
          v[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((x, y) => a[y * m + y] - a[x * m + x]);
  const values = new Float64Array(m);
  const vectors = new Float64Array(m * m);
  order.forEach((src, dst) => {
    values[dst] = a[src * m + src];
    for (let k = 0; k < m; k++) vectors[k * m + dst] = v[k * m + src];
  });
  return { values, vectors };
}

/**
 * Orthonormalises the columns of a row-major `n × l` matrix in place (modified Gram–Schmidt,
 * twice for stability). Columns that vanish are replaced by zeros.
 */
export function orthonormalizeColumns(a: Float64Array, n: number, l: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let c = 0; c < l; c++) {
      for (let p = 0; p < c; p++) {
        let dot = 0;
        for (let r = 0; r < n; r++) dot += a[r * l + c] * a[r * l + p];
        for (let r = 0; r < n; r++) a[r * l + c] -= dot * a[r * l + p];
      }
      let norm = 0;
      for (let r = 0; r < n; r++) norm += a[r * l + c] * a[r * l + c];
      norm = Math.sqrt(norm);
      const inv = norm > 1e-300 ? 1 / norm : 0;
      for (let r = 0; r < n; r++) a[r * l + c] *= inv;
    }
  }
}

/** Options of {@link randomizedPca}. */
export interface PcaOptions {
  /** Seed of the random test matrix (default 0). */
  seed?: number;
  /** Extra random directions beyond the components asked for (default 10). */
  oversample?: number;
  /** Power (subspace) iterations (default 4). */
  powerIterations?: number;
  /** Dimensions per wasm product (default 8192). */
  chunkSize?: number;
}

/** Principal component scores of the rows of a matrix. */
export interface PcaResult {
  /** `[n, components]` scores of the centred rows (projection onto the components). */
  scores: Matrix;
  /** Variance along each component (eigenvalues of the covariance, `/(n − 1)`). */
  explainedVariance: Float64Array;
}

/**
 * Randomized PCA (Halko, Martinsson & Tropp 2011) of the rows of `points` `[n, d]`: the
 * first `components` principal component scores. The `n × d` products run in TensorFlow.js
 * (wasm) over chunks of dimensions; centring is applied algebraically so no centred copy of
 * the data is made. Signs are fixed so that each score column has a positive largest entry.
 */
export async function randomizedPca(
  points: Matrix,
  components: number,
  options: PcaOptions = {},
): Promise<PcaResult> {
  const [n, d] = points.shape;
  if (components < 1 || components > Math.min(n, d)) {
    throw new Error(`PCA components must be in 1..${Math.min(n, d)}, got ${components}`);
  }
  await ready();
  const l = Math.min(components + (options.oversample ?? 10), n, d);
  const iterations = options.powerIterations ?? 4;
  const chunkSize = options.chunkSize ?? 8192;
  const rng = new Random(options.seed ?? 0);

  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) mean[c] += points.data[i * d + c];
  }
  for (let c = 0; c < d; c++) mean[c] /= n;

  // Column chunks of the (uncentred) data as tensors.
  const chunks: Array<{ c0: number; dc: number; x: tf.Tensor2D }> = [];
  for (let c0 = 0; c0 < d; c0 += chunkSize) {
    const dc = Math.min(chunkSize, d - c0);
    let values: Float32Array;
    if (dc === d) values = points.data;
    else {
      values = new Float32Array(n * dc);
      for (let i = 0; i < n; i++) {
        values.set(points.data.subarray(i * d + c0, i * d + c0 + dc), i * dc);
      }
    }
    chunks.push({ c0, dc, x: tf.tensor2d(values, [n, dc]) });
  }
  try {
    // Y = Xc Ω, with Xc = X − 1 μᵀ: Y = X Ω − 1 (μᵀ Ω).
    const omega = new Float32Array(d * l);
    for (let i = 0; i < omega.length; i++) omega[i] = rng.normal();
    const projectRight = (right: Float32Array): Float64Array => {
      // Returns Xc · R for R row-major d × l.
      const y = new Float64Array(n * l);
      for (const { c0, dc, x } of chunks) {
        const r = tf.tensor2d(right.subarray(c0 * l, (c0 + dc) * l), [dc, l]);
        const prod = tf.matMul(x, r);
        const v = prod.dataSync();
        prod.dispose();
        r.dispose();
        for (let i = 0; i < n * l; i++) y[i] += v[i];
      }
      const muR = new Float64Array(l);
      for (let c = 0; c < d; c++) {
        const m = mean[c];
        for (let k = 0; k < l; k++) muR[k] += m * right[c * l + k];
      }
      for (let i = 0; i < n; i++) for (let k = 0; k < l; k++) y[i * l + k] -= muR[k];
      return y;
    };
    const projectLeft = (q: Float64Array): Float32Array => {
      // Returns (Qᵀ Xc)ᵀ = Xcᵀ Q as row-major d × l.
      const qt = new Float32Array(l * n);
      const colSum = new Float64Array(l);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < l; k++) {
          qt[k * n + i] = q[i * l + k];
          colSum[k] += q[i * l + k];
        }
      }
      const qtT = tf.tensor2d(qt, [l, n]);
      const out = new Float32Array(d * l);
      for (const { c0, dc, x } of chunks) {
        const prod = tf.matMul(qtT, x); // l × dc
        const v = prod.dataSync();
        prod.dispose();
        for (let k = 0; k < l; k++) {
          for (let c = 0; c < dc; c++) {
            out[(c0 + c) * l + k] = v[k * dc + c] - colSum[k] * mean[c0 + c];
          }
        }
      }
      qtT.dispose();
      return out;
    };
    let y = projectRight(omega);
    for (let it = 0; it < iterations; it++) {
      orthonormalizeColumns(y, n, l);
      y = projectRight(projectLeft(y));
    }
    orthonormalizeColumns(y, n, l);
    const bt = projectLeft(y); // d × l, = Bᵀ with B = Qᵀ Xc
    const small = new Float64Array(l * l); // B Bᵀ
    for (let c = 0; c < d; c++) {
      for (let a = 0; a < l; a++) {
        const va = bt[c * l + a];
        for (let b = a; b < l; b++) small[a * l + b] += va * bt[c * l + b];
      }
    }
    for (let a = 0; a < l; a++) for (let b = 0; b < a; b++) small[a * l + b] = small[b * l + a];
    const { values, vectors } = symmetricEigen(small, l);
    // Scores = Q U Σ, where Σ = sqrt(eigenvalues) — equivalently Xc V.
    const scores = new Float32Array(n * components);
    for (let k = 0; k < components; k++) {
      const sigma = Math.sqrt(Math.max(values[k], 0));
      let maxAbs = 0, sign = 1;
      const col = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let a = 0; a < l; a++) s += y[i * l + a] * vectors[a * l + k];
        col[i] = s * sigma;
        if (Math.abs(col[i]) > maxAbs) {
          maxAbs = Math.abs(col[i]);
          sign = col[i] < 0 ? -1 : 1;
        }
      }
      for (let i = 0; i < n; i++) scores[i * components + k] = sign * col[i];
    }
    const explainedVariance = new Float64Array(components);
    for (let k = 0; k < components; k++) {
      explainedVariance[k] = Math.max(values[k], 0) / Math.max(n - 1, 1);
    }
    return { scores: { data: scores, shape: [n, components] }, explainedVariance };
  } finally {
    for (const { x } of chunks) x.dispose();
  }
}
