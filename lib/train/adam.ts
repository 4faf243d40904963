/**
 * Adam with parameter groups, each with its own learning rate (the paper's conv-stack and
 * head rates; the frozen backbone is simply not in any group). The update is PyTorch's
 * `torch.optim.Adam` (no weight decay by default):
 *
 *     m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
 *     p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
 *
 * Its state (step count, m, v) can be read and restored exactly, for checkpoints.
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { NamedArrays } from "./network.ts";

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
}

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
  readonly #m = new Map<string, tf.Variable>();
  readonly #v = new Map<string, tf.Variable>();

  /** Creates the optimizer; moments start at zero. */
  constructor(groups: ParamGroup[], options: AdamOptions = {}) {
    this.groups = groups;
    this.#beta1 = options.beta1 ?? 0.9;
    this.#beta2 = options.beta2 ?? 0.999;
    this.#epsilon = options.epsilon ?? 1e-8;
    this.#weightDecay = options.weightDecay ?? 0;
    for (const group of groups) {
      for (const { name, variable } of group.params) {
        if (this.#m.has(name)) throw new Error(`Adam: parameter name ${name} is used twice`);
        this.#m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(variable), false)));
        this.#v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(variable), false)));
      }
    }
  }

  /** The variables of every group, in order (for `tf.variableGrads`). */
  variables(): tf.Variable[] {
    return this.groups.flatMap((g) => g.params.map((p) => p.variable));
  }

  /**
   * Applies one update from `grads` (keyed by variable name, as `tf.variableGrads`
   * returns). A variable without a gradient is left unchanged. Does not dispose `grads`.
   */
  applyGradients(grads: Record<string, tf.Tensor>): void {
    this.step_++;
    const t = this.step_;
    const b1 = this.#beta1, b2 = this.#beta2;
    const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
    tf.tidy(() => {
      for (const group of this.groups) {
        if (group.lr === 0) continue;
        const stepSize = group.lr / bc1;
        const sqrtBc2 = Math.sqrt(bc2);
        for (const { name, variable } of group.params) {
          let g = grads[variable.name];
          if (!g) continue;
          if (this.#weightDecay > 0) g = g.add(variable.mul(this.#weightDecay));
          const m = this.#m.get(name)!, v = this.#v.get(name)!;
          const m1 = m.mul(b1).add(g.mul(1 - b1));
          const v1 = v.mul(b2).add(g.square().mul(1 - b2));
          m.assign(m1);
          v.assign(v1);
          const denom = v1.sqrt().div(sqrtBc2).add(this.#epsilon);
          variable.assign(variable.sub(m1.div(denom).mul(stepSize)));
        }
      }
    });
  }

  /** The state: step count and first/second moments per parameter name (copies). */
  getState(): { step: number; moments: NamedArrays } {
    const moments: NamedArrays = {};
    for (const [name, m] of this.#m) {
      moments[`m/${name}`] = { data: m.dataSync() as Float32Array, shape: m.shape.slice() };
      const v = this.#v.get(name)!;
      moments[`v/${name}`] = { data: v.dataSync() as Float32Array, shape: v.shape.slice() };
    }
    return { step: this.step_, moments };
  }

  /** Restores a state saved with {@link getState}. */
  setState(state: { step: number; moments: NamedArrays }): void {
    for (const [prefix, table] of [["m", this.#m], ["v", this.#v]] as const) {
      for (const [name, variable] of table) {
        const saved = state.moments[`${prefix}/${name}`];
        if (!saved || saved.data.length !== variable.size) {
          throw new Error(`Adam.setState: missing or misshapen state ${prefix}/${name}`);
        }
        tf.tidy(() => variable.assign(tf.tensor(saved.data, variable.shape, "float32")));
      }
    }
    this.step_ = state.step;
  }

  /** Frees the moment variables. */
  dispose(): void {
    for (const v of [...this.#m.values(), ...this.#v.values()]) v.dispose();
  }
}
