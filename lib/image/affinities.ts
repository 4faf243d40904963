/**
 * t-SNE input affinities: per-point Gaussian bandwidths found by binary search on the
 * perplexity, then the symmetric joint probabilities `P = (P_{j|i} + P_{i|j}) / Σ`, either
 * dense over all pairs (exact t-SNE) or sparse over k nearest neighbours (Barnes–Hut).
 * Same semantics as scikit-learn's `_binary_search_perplexity`, `_joint_probabilities` and
 * `_joint_probabilities_nn` (100 steps, tolerance 1e-5 on the entropy in nats).
 *
 * @module
 */

const MACHINE_EPSILON = 2.220446049250313e-16;
const PERPLEXITY_TOLERANCE = 1e-5;
const STEPS = 100;

/** Sparse symmetric matrix in compressed-row form (both triangles stored). */
export interface SparseSymmetric {
  /** `n + 1` row offsets into `columns` / `values`. */
  rowStart: Int32Array;
  /** Column of each stored entry. */
  columns: Int32Array;
  /** Value of each stored entry. */
  values: Float64Array;
  /** Number of rows. */
  n: number;
}

/**
 * Conditional probabilities `P_{j|i}` for each row of squared distances `sqDist`
 * (`n × m`, row-major; `skipDiagonal` ignores entry `(i, i)` as for a full matrix).
 * Returns `n × m` probabilities (rows sum to 1) and the mean bandwidth `σ = √(1/β)`.
 */
export function conditionalProbabilities(
  sqDist: ArrayLike<number>,
  n: number,
  m: number,
  perplexity: number,
  skipDiagonal: boolean,
): { probabilities: Float64Array; meanSigma: number } {
  if (!(perplexity > 0)) throw new Error(`perplexity must be positive, got ${perplexity}`);
  const out = new Float64Array(n * m);
  const desiredEntropy = Math.log(perplexity);
  let sigmaSum = 0;
  for (let i = 0; i < n; i++) {
    const base = i * m;
    // Shift by the row minimum: P is unchanged, and exp() no longer underflows for large
    // distances (scikit-learn relies on halving β from 1 instead).
    let minD = Infinity;
    for (let j = 0; j < m; j++) {
      if (skipDiagonal && j === i) continue;
      const v = sqDist[base + j];
      if (v < minD) minD = v;
    }
    if (!Number.isFinite(minD)) minD = 0;
    let beta = 1, betaMin = -Infinity, betaMax = Infinity;
    for (let step = 0; step < STEPS; step++) {
      let sumP = 0;
      for (let j = 0; j < m; j++) {
        if (skipDiagonal && j === i) {
          out[base + j] = 0;
          continue;
        }
        const p = Math.exp(-(sqDist[base + j] - minD) * beta);
        out[base + j] = p;
        sumP += p;
      }
      if (sumP === 0) sumP = 1e-8;
      let sumDP = 0;
      for (let j = 0; j < m; j++) {
        const p = out[base + j] / sumP;
        out[base + j] = p;
        sumDP += (sqDist[base + j] - minD) * p;
      }
      const entropy = Math.log(sumP) + beta * sumDP;
      const diff = entropy - desiredEntropy;
      if (Math.abs(diff) <= PERPLEXITY_TOLERANCE) break;
      if (diff > 0) {
        betaMin = beta;
        beta = betaMax === Infinity ? beta * 2 : (beta + betaMax) / 2;
      } else {
        betaMax = beta;
        beta = betaMin === -Infinity ? beta / 2 : (beta + betaMin) / 2;
      }
    }
    if (skipDiagonal) out[base + i] = 0;
    sigmaSum += Math.sqrt(1 / beta);
  }
  return { probabilities: out, meanSigma: sigmaSum / n };
}

/**
 * Dense joint probabilities from a full `n × n` squared-distance matrix: symmetrised,
 * normalised to sum 1, floored at machine epsilon off the diagonal (scikit-learn's exact
 * method). Returns the full symmetric `n × n` matrix (zero diagonal).
 */
export function jointProbabilitiesDense(
  sqDist: ArrayLike<number>,
  n: number,
  perplexity: number,
): { P: Float64Array; meanSigma: number } {
  const { probabilities: cond, meanSigma } = conditionalProbabilities(
    sqDist,
    n,
    n,
    perplexity,
    true,
  );
  const P = new Float64Array(n * n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = cond[i * n + j] + cond[j * n + i];
      P[i * n + j] = v;
      sum += 2 * v;
    }
  }
  sum = Math.max(sum, MACHINE_EPSILON);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = Math.max(P[i * n + j] / sum, MACHINE_EPSILON);
      P[i * n + j] = v;
      P[j * n + i] = v;
    }
  }
  return { P, meanSigma };
}

/**
 * Sparse joint probabilities over k nearest neighbours: `P = (C + Cᵀ) / sum(C + Cᵀ)` where
 * `C` holds the conditional probabilities of each point's neighbours (scikit-learn's
 * Barnes–Hut affinities). Rows of the result are sorted by column.
 */
export function jointProbabilitiesSparse(
  indices: Int32Array,
  sqDistances: ArrayLike<number>,
  n: number,
  k: number,
  perplexity: number,
): { P: SparseSymmetric; meanSigma: number } {
  const { probabilities: cond, meanSigma } = conditionalProbabilities(
    sqDistances,
    n,
    k,
    perplexity,
    false,
  );
  // Count entries of C + Cᵀ per row (duplicates merged below).
  const counts = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    counts[i] += k;
    for (let t = 0; t < k; t++) counts[indices[i * k + t]] += 1;
  }
  const start = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) start[i + 1] = start[i] + counts[i];
  const cols = new Int32Array(start[n]);
  const vals = new Float64Array(start[n]);
  const fill = start.slice(0, n);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < k; t++) {
      const j = indices[i * k + t];
      const v = cond[i * k + t];
      cols[fill[i]] = j;
      vals[fill[i]++] = v;
      cols[fill[j]] = i;
      vals[fill[j]++] = v;
    }
  }
  // Sort each row by column and merge duplicates.
  const rowStart = new Int32Array(n + 1);
  const outCols = new Int32Array(start[n]);
  const outVals = new Float64Array(start[n]);
  let total = 0;
  let w = 0;
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    rowStart[i] = w;
    order.length = 0;
    for (let e = start[i]; e < start[i + 1]; e++) order.push(e);
    order.sort((a, b) => cols[a] - cols[b]);
    let last = -1;
    for (const e of order) {
      if (cols[e] === last) {
        outVals[w - 1] += vals[e];
      } else {
        outCols[w] = cols[e];
        outVals[w] = vals[e];
        last = cols[e];
        w++;
      }
      total += vals[e];
    }
  }
  rowStart[n] = w;
  total = Math.max(total, MACHINE_EPSILON);
  const values = outVals.slice(0, w);
  for (let e = 0; e < w; e++) values[e] /= total;
  return { P: { rowStart, columns: outCols.slice(0, w), values, n }, meanSigma };
}
