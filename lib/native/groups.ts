/**
 * Grouped convolutions hidden in dense filters. TF.js has no grouped convolution, so the
 * toolkit builds PyTorch's `groups=G` convolutions (ResNeXt's 3×3 convolutions, arXiv
 * 2106.12479 §3) as dense filters that are zero outside the G diagonal blocks; computed
 * densely they cost G times the multiply-adds. {@link blockDiagonalGroups} finds the block
 * structure in the values (exact zeros only, so the grouped convolution computes the same
 * sums without the zero terms) and {@link groupFilter} extracts the blocks in the layout
 * oneDNN's grouped primitive reads.
 *
 * @module
 */

/**
 * The largest G > 1 dividing both channel counts for which the filter `[taps, ci, co]`
 * (taps = kh·kw) is zero outside the G diagonal blocks (input channels `g·ci/G …` to output
 * channels `g·co/G …`), else 1. A dense filter fails each candidate at its first non-zero
 * value outside a block, so the check costs almost nothing where there are no groups.
 */
export function blockDiagonalGroups(
  filter: Float32Array,
  taps: number,
  ci: number,
  co: number,
): number {
  for (let g = gcd(ci, co); g > 1; g--) {
    if (ci % g === 0 && co % g === 0 && zeroOffBlocks(filter, taps, ci, co, g)) return g;
  }
  return 1;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function zeroOffBlocks(f: Float32Array, taps: number, ci: number, co: number, g: number) {
  const cig = ci / g, cog = co / g;
  for (let t = 0; t < taps; t++) {
    for (let i = 0; i < ci; i++) {
      const row = (t * ci + i) * co, lo = Math.floor(i / cig) * cog, hi = lo + cog;
      for (let o = 0; o < lo; o++) if (f[row + o] !== 0) return false;
      for (let o = hi; o < co; o++) if (f[row + o] !== 0) return false;
    }
  }
  return true;
}

/**
 * The G diagonal blocks of the filter `[taps, ci, co]`, laid out `[taps, ci/G, G, co/G]`
 * (oneDNN's `hwigo`): entry `[t, i, g, o]` is the filter's `[t, g·ci/G + i, g·co/G + o]`.
 */
export function groupFilter(
  filter: Float32Array,
  taps: number,
  ci: number,
  co: number,
  groups: number,
): Float32Array {
  const cig = ci / groups, cog = co / groups;
  const out = new Float32Array(taps * cig * co);
  for (let t = 0; t < taps; t++) {
    for (let i = 0; i < cig; i++) {
      for (let g = 0; g < groups; g++) {
        const src = (t * ci + g * cig + i) * co + g * cog;
        out.set(filter.subarray(src, src + cog), ((t * cig + i) * groups + g) * cog);
      }
    }
  }
  return out;
}
