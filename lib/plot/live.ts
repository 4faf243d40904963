/**
 * Displays that update in place in a Deno Jupyter notebook: {@link LiveDisplay} shows a value
 * once (`display_data` with a `display_id`) and replaces it on every later `show`
 * (`update_display_data`), so a figure redrawn per epoch stays one figure. {@link LiveCurves}
 * collects per-epoch records of several models and redraws their training curves.
 *
 * Outside a kernel (scripts, tests) nothing is displayed: the last value is kept
 * (`LiveDisplay.last`) for the caller to show or save.
 *
 * ```ts ignore
 * const curves = new LiveCurves({ title: "training" });
 * await runExperiment(cfg, { log: (line) => curves.addLogLine(line) || console.log(line) });
 * ```
 *
 * @module
 */
import { type JupyterBroadcaster, jupyterKernel } from "../progress.ts";
import { type EpochMetrics, trainingCurves } from "./charts.ts";
import type { LineChartOptions } from "./charts.ts";
import { type Figure, jupyterDisplay, type MimeBundle } from "./figure.ts";

/** A value with a Jupyter MIME bundle (a {@link Figure}, a `PngImage`, a table). */
export interface Displayable {
  /** The MIME bundle to show. */
  [jupyterDisplay](): MimeBundle | Promise<MimeBundle>;
}

let displays = 0;

/** One display in a notebook, replaced in place by each {@link LiveDisplay.show}. */
export class LiveDisplay {
  /** The display id of the notebook output. */
  readonly displayId: string;
  #jupyter: JupyterBroadcaster | undefined;
  #shown = false;
  #last: Displayable | undefined;

  /**
   * A display in the kernel's notebook (`jupyter`: the API to use; default the kernel's
   * `Deno.jupyter`, none outside a kernel).
   */
  constructor(options: { jupyter?: JupyterBroadcaster | null; displayId?: string } = {}) {
    this.#jupyter = options.jupyter === null ? undefined : options.jupyter ?? jupyterKernel();
    this.displayId = options.displayId ??
      `live-${Date.now().toString(36)}-${++displays}`;
  }

  /** Whether this shows anything (runs in a kernel). */
  get active(): boolean {
    return this.#jupyter !== undefined;
  }

  /** The value shown last. */
  get last(): Displayable | undefined {
    return this.#last;
  }

  /** Shows `value`: the first call adds the display, later calls replace it. */
  async show(value: Displayable): Promise<void> {
    this.#last = value;
    if (!this.#jupyter) return;
    const type = this.#shown ? "update_display_data" : "display_data";
    this.#shown = true;
    await this.#jupyter.broadcast(type, {
      data: await value[jupyterDisplay](),
      metadata: {},
      transient: { display_id: this.displayId },
    });
  }
}

/**
 * The per-epoch line `runExperiment` logs (`<job> epoch N: train loss L[, validation acc A]`)
 * as the job's id and its record, or undefined for other lines.
 */
export function parseEpochLine(line: string): { job: string; record: EpochMetrics } | undefined {
  const match = line.match(
    /^(\S+) epoch (\d+): train loss (-?[\d.e+-]+|NaN)(?:, validation acc (-?[\d.e+-]+|NaN))?/,
  );
  if (!match) return undefined;
  const record: EpochMetrics = { epoch: Number(match[2]), trainLoss: Number(match[3]) };
  if (match[4] !== undefined) record.validationAccuracy = Number(match[4]);
  return { job: match[1], record };
}

/**
 * Training curves redrawn as epochs finish: {@link LiveCurves.add} records one epoch of a
 * job and redraws one {@link LiveDisplay} (at most every `intervalMs`, default 1 s;
 * {@link LiveCurves.flush} draws the last state).
 */
export class LiveCurves {
  /** The display the curves are drawn into. */
  readonly display: LiveDisplay;
  readonly #histories = new Map<string, EpochMetrics[]>();
  readonly #options: Omit<LineChartOptions, "yDomain">;
  readonly #intervalMs: number;
  #lastDraw = -Infinity;
  #pending: Promise<void> = Promise.resolve();

  /** Curves with `options` of {@link trainingCurves}. */
  constructor(
    options: Omit<LineChartOptions, "yDomain"> & {
      jupyter?: JupyterBroadcaster | null;
      intervalMs?: number;
    } = {},
  ) {
    const { jupyter, intervalMs, ...chart } = options;
    this.display = new LiveDisplay({ jupyter });
    this.#options = chart;
    this.#intervalMs = intervalMs ?? 1000;
  }

  /** Jobs with at least one epoch, in the order they first reported. */
  get jobs(): string[] {
    return [...this.#histories.keys()];
  }

  /** Records one epoch of `job` and redraws when due. */
  add(job: string, record: EpochMetrics): void {
    const history = this.#histories.get(job) ?? [];
    history.push(record);
    this.#histories.set(job, history);
    const now = performance.now();
    if (now - this.#lastDraw >= this.#intervalMs) {
      this.#lastDraw = now;
      this.#draw();
    }
  }

  /** Records `line` when it is an epoch line of `runExperiment`; returns whether it was. */
  addLogLine(line: string): boolean {
    const parsed = parseEpochLine(line);
    if (parsed) this.add(parsed.job, parsed.record);
    return parsed !== undefined;
  }

  /** The curves of every job so far, or undefined before the first epoch. */
  figure(): Figure | undefined {
    if (this.#histories.size === 0) return undefined;
    return trainingCurves(
      [...this.#histories].map(([model, history]) => ({ model, history })),
      this.#options,
    );
  }

  /** Draws the current state and waits for every display message sent. */
  async flush(): Promise<void> {
    this.#draw();
    await this.#pending;
  }

  #draw(): void {
    const figure = this.figure();
    if (!figure) return;
    this.#pending = this.#pending.then(() => this.display.show(figure)).catch(() => {});
  }
}
