/**
 * Adam with parameter groups, each with its own learning rate (the paper's conv-stack and
 * head rates; the frozen backbone is simply not in any group). The update is PyTorch's
 * `torch.optim.Adam` (no weight decay by default):
 *
 *     m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
 *     p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
 *
 * One fused pass over flat arrays instead of a dozen TF.js ops over every parameter (each a
 * full read and write of millions of values): every operation is rounded to float32 as
 * TF.js' float32 ops would round it, so the result is bit for bit the op-by-op update.
 * In data-parallel training ({@link AdamOptions.collective}) the ranks split the update:
 * each sums and updates its part of the gradients and the ranks exchange the new values.
 *
 * Its state (step count, m, v) can be read and restored exactly, for checkpoints.
 *
 * @module
 */
import { readValues, tf } from "../tf.ts";
import type { Collective } from "./collective.ts";
import type { NamedArrays } from "./network.ts";
import { AdamSimd } from "./adam_simd.ts";

/** A group of variables sharing a learning rate. */
export interface ParamGroup {
  /** Group name, e.g. `"conv"`. */
  name: string;
  /** Learning rate. */
  lr: number;
  /** The variables with unique names (names key the optimizer state). */
  params: { name: string; variable: tf.Variable }[];
}

/** Options of {@link Adam}. */
export interface AdamOptions {
  /** β₁ (default 0.9). */
  beta1?: number;
  /** β₂ (default 0.999). */
  beta2?: number;
  /** ε (default 1e-8). */
  epsilon?: number;
  /** L2 penalty added to the gradient, as PyTorch's `weight_decay` (default 0). */
  weightDecay?: number;
  /**
   * Data-parallel group: gradients are summed over its ranks before the update, and each
   * rank updates only its part (every rank then calls {@link Adam.getState} together).
   */
  collective?: Collective;
}

/** Where a parameter sits in the flat arrays. */
interface Slot {
  name: string;
  variable: tf.Variable;
  lr: number;
  offset: number;
  size: number;
}

const f32 = Math.fround;

/** Adam over parameter groups. */
export class Adam {
  /** The groups, in order. */
  readonly groups: ParamGroup[];
  /** Steps taken. */
  step_ = 0;
  readonly #beta1: number;
  readonly #beta2: number;
  readonly #epsilon: number;
  readonly #weightDecay: number;
  readonly #collective?: Collective;
  readonly #slots: Slot[] = [];
  /** First and second moments, gradients (then new values) and parameters, flat. */
  readonly #m: Float32Array;
  readonly #v: Float32Array;
  readonly #values: Float32Array;
  readonly #params: Float32Array;
  /** The update in WebAssembly SIMD (bit for bit the scalar loop), where available. */
  readonly #simd?: AdamSimd;

  /** Creates the optimizer; moments start at zero. */
  constructor(groups: ParamGroup[], options: AdamOptions = {}) {
    this.groups = groups;
    this.#beta1 = options.beta1 ?? 0.9;
    this.#beta2 = options.beta2 ?? 0.999;
    this.#epsilon = options.epsilon ?? 1e-8;
    this.#weightDecay = options.weightDecay ?? 0;
    this.#collective = options.collective;
    const names = new Set<string>();
    let offset = 0;
    for (const group of groups) {
      for (const { name, variable } of group.params) {
        if (names.has(name)) throw new Error(`Adam: parameter name ${name} is used twice`);
        names.add(name);
        this.#slots.push({ name, variable, lr: group.lr, offset, size: variable.size });
        offset += variable.size;
      }
    }
    this.#simd = AdamSimd.create(offset);
    this.#m = this.#simd?.m ?? new Float32Array(offset);
    this.#v = this.#simd?.v ?? new Float32Array(offset);
    this.#values = this.#simd?.values ?? new Float32Array(offset);
    this.#params = this.#simd?.params ?? new Float32Array(offset);
  }

  /** The variables of every group, in order (for `tf.variableGrads`). */
  variables(): tf.Variable[] {
    return this.groups.flatMap((g) => g.params.map((p) => p.variable));
  }

  /**
   * Applies one update from `grads` (keyed by variable name, as `tf.variableGrads`
   * returns). A variable without a gradient is left unchanged. Does not dispose `grads`.
   * With a collective, `grads` are this rank's and every rank must call it.
   */
  applyGradients(grads: Record<string, tf.Tensor>): void {
    this.step_++;
    const values = this.#values, params = this.#params;
    const updated = this.#slots.map((slot) => {
      const g = grads[slot.variable.name];
      const end = slot.offset + slot.size;
      if (g) values.set(readValues(g), slot.offset);
      else values.fill(0, slot.offset, end);
      params.set(readValues(slot.variable), slot.offset);
      return g !== undefined && slot.lr !== 0;
    });
    const update = (from: number, to: number) => this.#update(updated, from, to);
    if (this.#collective) this.#collective.allReduceUpdate(values, update);
    else update(0, values.length);
    tf.tidy(() => {
      this.#slots.forEach((slot, i) => {
        if (!updated[i]) return;
        const { variable, offset, size } = slot;
        variable.assign(tf.tensor(values.subarray(offset, offset + size), variable.shape));
      });
    });
  }

  /**
   * Turns the gradients in `values[from, to)` into new parameter values (and moves the
   * moments), rounding every operation to float32 in the order of the op-by-op update.
   */
  #update(updated: boolean[], from: number, to: number): void {
    const t = this.step_;
    const values = this.#values, params = this.#params, m = this.#m, v = this.#v;
    const b1 = f32(this.#beta1), b2 = f32(this.#beta2);
    const oneMinusB1 = f32(1 - this.#beta1), oneMinusB2 = f32(1 - this.#beta2);
    const epsilon = f32(this.#epsilon), decay = f32(this.#weightDecay);
    const sqrtBc2 = f32(Math.sqrt(1 - this.#beta2 ** t));
    this.#slots.forEach((slot, k) => {
      const lo = Math.max(from, slot.offset), hi = Math.min(to, slot.offset + slot.size);
      if (lo >= hi) return;
      if (!updated[k]) {
        for (let i = lo; i < hi; i++) values[i] = params[i];
        return;
      }
      const stepSize = f32(slot.lr / (1 - this.#beta1 ** t));
      let start = lo;
      if (this.#simd) {
        const count = (hi - lo) - ((hi - lo) % 4);
        this.#simd.update(lo, count, {
          b1,
          b2,
          oneMinusB1,
          oneMinusB2,
          epsilon,
          sqrtBc2,
          step: stepSize,
          decay,
        });
        start = lo + count;
      }
      for (let i = start; i < hi; i++) {
        const p = params[i];
        let g = values[i];
        if (decay !== 0) g = f32(g + f32(p * decay));
        const mi = f32(f32(m[i] * b1) + f32(g * oneMinusB1));
        const vi = f32(f32(v[i] * b2) + f32(f32(g * g) * oneMinusB2));
        m[i] = mi;
        v[i] = vi;
        const denom = f32(f32(f32(Math.sqrt(vi)) / sqrtBc2) + epsilon);
        values[i] = f32(p - f32(f32(mi / denom) * stepSize));
      }
    });
  }

  /**
   * The state: step count and first/second moments per parameter name (copies). With a
   * collective every rank must call it (the ranks hold different parts of the moments).
   */
  getState(): { step: number; moments: NamedArrays } {
    if (this.#collective) {
      this.#collective.allGatherParts(this.#m);
      this.#collective.allGatherParts(this.#v);
    }
    const moments: NamedArrays = {};
    for (const { name, variable, offset, size } of this.#slots) {
      const shape = variable.shape.slice();
      moments[`m/${name}`] = { data: this.#m.slice(offset, offset + size), shape };
      moments[`v/${name}`] = { data: this.#v.slice(offset, offset + size), shape: shape.slice() };
    }
    return { step: this.step_, moments };
  }

  /** Restores a state saved with {@link getState}. */
  setState(state: { step: number; moments: NamedArrays }): void {
    for (const [prefix, table] of [["m", this.#m], ["v", this.#v]] as const) {
      for (const { name, offset, size } of this.#slots) {
        const saved = state.moments[`${prefix}/${name}`];
        if (!saved || saved.data.length !== size) {
          throw new Error(`Adam.setState: missing or misshapen state ${prefix}/${name}`);
        }
        table.set(saved.data, offset);
      }
    }
    this.step_ = state.step;
  }
}
