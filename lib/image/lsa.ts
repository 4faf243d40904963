/**
 * Linear sum assignment: given an `n × m` cost matrix (`n ≤ m`), the one-to-one assignment
 * of every row to a distinct column with the least total cost. Solved exactly by shortest
 * augmenting paths with dual potentials (the Jonker–Volgenant / Hungarian scheme, as in
 * scipy's `linear_sum_assignment`), O(n²m) in the worst case.
 *
 * @module
 */

/** An optimal assignment. */
export interface Assignment {
  /** Column assigned to each row. */
  columnOfRow: Int32Array;
  /** Total cost of the assignment. */
  cost: number;
}

/**
 * Solves the rectangular assignment problem for a row-major `rows × cols` cost matrix
 * (`rows ≤ cols`; transpose the problem otherwise). Costs must be finite.
 */
export function linearSumAssignment(
  cost: ArrayLike<number>,
  rows: number,
  cols: number,
): Assignment {
  if (rows > cols) {
    throw new Error(
      `linearSumAssignment needs rows ≤ cols, got ${rows} × ${cols}: transpose the cost matrix`,
    );
  }
  if (cost.length !== rows * cols) {
    throw new Error(`cost has ${cost.length} entries, ${rows} × ${cols} needs ${rows * cols}`);
  }
  for (let t = 0; t < cost.length; t++) {
    if (!Number.isFinite(cost[t])) throw new Error(`cost[${t}] is not finite (${cost[t]})`);
  }
  // 1-based rows/columns; column 0 is the virtual start of each augmenting path.
  const u = new Float64Array(rows + 1); // row potentials
  const v = new Float64Array(cols + 1); // column potentials
  const rowOfCol = new Int32Array(cols + 1); // 0 = free
  const way = new Int32Array(cols + 1);
  // Slack of each unvisited column, stored shifted by the running sum S of the search's
  // steps, so the per-step "every unvisited slack −= delta" costs nothing; visited columns
  // get their potential updates once, at the end of the search.
  const slack = new Float64Array(cols + 1);
  const visitedAt = new Float64Array(cols + 1);
  const visited: number[] = [];
  const todo = new Int32Array(cols);
  for (let i = 1; i <= rows; i++) {
    rowOfCol[0] = i;
    let j0 = 0;
    slack.fill(Infinity);
    let remaining = cols;
    for (let j = 0; j < cols; j++) todo[j] = j + 1;
    visited.length = 0;
    let shift = 0;
    do {
      visitedAt[j0] = shift;
      visited.push(j0);
      const i0 = rowOfCol[j0];
      const base = (i0 - 1) * cols - 1;
      const offset = shift - u[i0];
      let best = Infinity, j1 = -1, k1 = -1;
      for (let k = 0; k < remaining; k++) {
        const j = todo[k];
        const cur = cost[base + j] + offset - v[j];
        let s = slack[j];
        if (cur < s) {
          slack[j] = s = cur;
          way[j] = j0;
        }
        if (s < best) {
          best = s;
          j1 = j;
          k1 = k;
        }
      }
      shift = best;
      todo[k1] = todo[--remaining];
      j0 = j1;
    } while (rowOfCol[j0] !== 0);
    for (const j of visited) {
      const inc = shift - visitedAt[j];
      u[rowOfCol[j]] += inc;
      v[j] -= inc;
    }
    // Augment along the path.
    do {
      const j1 = way[j0];
      rowOfCol[j0] = rowOfCol[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const columnOfRow = new Int32Array(rows).fill(-1);
  let total = 0;
  for (let j = 1; j <= cols; j++) {
    const i = rowOfCol[j];
    if (i > 0) {
      columnOfRow[i - 1] = j - 1;
      total += cost[(i - 1) * cols + j - 1];
    }
  }
  return { columnOfRow, cost: total };
}
