/**
 * A small progress bar for long work: count, rate and ETA on one line, redrawn at most every
 * 200 ms. Where it draws ({@link progressSink}):
 *
 * - in a Deno Jupyter kernel (`Deno.jupyter` exists, i.e. a notebook cell, not a worker): one
 *   display (text and an HTML `<progress>` bar) updated in place through its `display_id`
 *   (`display_data` once, then `update_display_data`), at most every 500 ms;
 * - on a terminal: one stderr line redrawn in place;
 * - elsewhere (CI logs, workers): a stderr line every few seconds, so logs stay short.
 *
 * @module
 */

/** Progress reported by long-running functions through an `onProgress` callback. */
export interface Progress {
  /** Units done so far. */
  done: number;
  /** Units in all, when known. */
  total?: number;
}

/**
 * The part of the Deno Jupyter API a progress display uses: `Deno.jupyter.broadcast(type,
 * content)` sends an IOPub message (`display_data`, `update_display_data`) to the notebook.
 */
export interface JupyterBroadcaster {
  /** Sends one IOPub message. */
  broadcast(msgType: string, content: Record<string, unknown>): Promise<void>;
}

/**
 * The kernel's `Deno.jupyter` when this code runs in a Deno Jupyter kernel, else undefined.
 * Outside `deno jupyter`, reading `Deno.jupyter` throws; in a worker it is absent.
 */
export function jupyterKernel(): JupyterBroadcaster | undefined {
  try {
    const jupyter = (Deno as unknown as { jupyter?: Partial<JupyterBroadcaster> }).jupyter;
    return typeof jupyter?.broadcast === "function" ? jupyter as JupyterBroadcaster : undefined;
  } catch {
    return undefined;
  }
}

/** Where a {@link ProgressBar} draws. */
export type ProgressSink = "jupyter" | "terminal" | "log" | "silent";

/** The sink for a bar: silent, else a Jupyter display in a kernel, else by stderr's kind. */
export function progressSink(
  options: { silent?: boolean; jupyter?: JupyterBroadcaster; tty: boolean },
): ProgressSink {
  if (options.silent) return "silent";
  if (options.jupyter) return "jupyter";
  return options.tty ? "terminal" : "log";
}

/** Escapes text for HTML. */
function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The MIME bundle of a progress display: the line as text, and as HTML with a `<progress>`
 * bar (indeterminate when `fraction` is undefined).
 */
export function progressBundle(line: string, fraction?: number): Record<string, string> {
  const value = fraction === undefined ? "" : ` value="${Math.min(1, Math.max(0, fraction))}"`;
  return {
    "text/plain": line,
    "text/html": `<div style="font-family: monospace; white-space: pre">` +
      `<progress${value} max="1" style="width: 16em; vertical-align: middle"></progress> ` +
      `${escapeHtml(line)}</div>`,
  };
}

let displays = 0;

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Unit name shown after the rate, e.g. `"reviews"`. */
  unit?: string;
  /** Print nothing (for tests and quiet runs). */
  silent?: boolean;
  /**
   * The Jupyter API to display through (default: the kernel's `Deno.jupyter` when there is
   * one, see {@link jupyterKernel}); `null`: never a display, always stderr.
   */
  jupyter?: JupyterBroadcaster | null;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** A one-line progress bar with rate and ETA. */
export class ProgressBar {
  readonly label: string;
  readonly total: number | undefined;
  readonly unit: string;
  #start = performance.now();
  #lastDraw = 0;
  #done = 0;
  #sink: ProgressSink;
  #jupyter: JupyterBroadcaster | undefined;
  #displayId: string | undefined;
  #encoder = new TextEncoder();

  /** Starts a bar called `label` over `total` units (unknown when omitted). */
  constructor(label: string, total?: number, options: ProgressBarOptions = {}) {
    this.label = label;
    this.total = total;
    this.unit = options.unit ?? "it";
    this.#jupyter = options.jupyter === null ? undefined : options.jupyter ?? jupyterKernel();
    this.#sink = progressSink({
      silent: options.silent,
      jupyter: this.#jupyter,
      tty: Deno.stderr.isTerminal(),
    });
  }

  /** Where this bar draws. */
  get sink(): ProgressSink {
    return this.#sink;
  }

  /** The Jupyter display id this bar updates (set once it has drawn in a kernel). */
  get displayId(): string | undefined {
    return this.#displayId;
  }

  /** Units done so far. */
  get done(): number {
    return this.#done;
  }

  /** Sets the number of units done and redraws if due. */
  update(done: number): void {
    this.#done = done;
    const now = performance.now();
    const interval = this.#sink === "terminal" ? 200 : this.#sink === "jupyter" ? 500 : 5000;
    if (now - this.#lastDraw >= interval) {
      this.#lastDraw = now;
      this.#draw(false);
    }
  }

  /** Adds `n` units done. */
  tick(n = 1): void {
    this.update(this.#done + n);
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    this.#draw(true);
  }

  /** The current line, without control characters. */
  line(): string {
    const elapsed = (performance.now() - this.#start) / 1000;
    const rate = elapsed > 0 ? this.#done / elapsed : 0;
    const rateText = `${rate >= 100 ? rate.toFixed(0) : rate.toFixed(2)} ${this.unit}/s`;
    if (this.total === undefined) {
      return `${this.label} ${this.#done} ${this.unit} | ${rateText} | ${formatSeconds(elapsed)}`;
    }
    const fraction = this.total > 0 ? Math.min(1, this.#done / this.total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    const eta = rate > 0 ? (this.total - this.#done) / rate : Infinity;
    return `${this.label} [${bar}] ${this.#done}/${this.total} ${(fraction * 100).toFixed(0)}% | ` +
      `${rateText} | ${formatSeconds(elapsed)} elapsed, ETA ${formatSeconds(eta)}`;
  }

  /** Done fraction, or undefined without a total. */
  #fraction(): number | undefined {
    if (this.total === undefined) return undefined;
    return this.total > 0 ? Math.min(1, this.#done / this.total) : 1;
  }

  #draw(final: boolean): void {
    if (this.#sink === "silent") return;
    if (this.#sink === "jupyter") {
      const first = this.#displayId === undefined;
      this.#displayId ??= `progress-${Date.now().toString(36)}-${++displays}`;
      const fallBack = () => {
        this.#sink = "log";
      };
      try {
        // The kernel's broadcast may return a promise or nothing; neither may throw here.
        const sent: unknown = this.#jupyter!.broadcast(
          first ? "display_data" : "update_display_data",
          {
            data: progressBundle(this.line(), this.#fraction()),
            metadata: {},
            transient: { display_id: this.#displayId },
          },
        );
        Promise.resolve(sent).catch(fallBack);
      } catch {
        fallBack();
      }
      return;
    }
    const tty = this.#sink === "terminal";
    const text = tty ? `\r\x1b[2K${this.line()}${final ? "\n" : ""}` : `${this.line()}\n`;
    Deno.stderr.writeSync(this.#encoder.encode(text));
  }
}
