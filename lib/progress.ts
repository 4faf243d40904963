/**
 * A small progress bar for long work: count, rate and ETA on one line of stderr, redrawn at
 * most every 200 ms. On a terminal it redraws in place; elsewhere (CI logs, notebooks) it
 * prints a line every few seconds so logs stay short.
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

/** Options of {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Unit name shown after the rate, e.g. `"reviews"`. */
  unit?: string;
  /** Print nothing (for tests and quiet runs). */
  silent?: boolean;
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
  #silent: boolean;
  #tty: boolean;
  #encoder = new TextEncoder();

  /** Starts a bar called `label` over `total` units (unknown when omitted). */
  constructor(label: string, total?: number, options: ProgressBarOptions = {}) {
    this.label = label;
    this.total = total;
    this.unit = options.unit ?? "it";
    this.#silent = options.silent ?? false;
    this.#tty = Deno.stderr.isTerminal();
  }

  /** Units done so far. */
  get done(): number {
    return this.#done;
  }

  /** Sets the number of units done and redraws if due. */
  update(done: number): void {
    this.#done = done;
    const now = performance.now();
    const interval = this.#tty ? 200 : 5000;
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

  #draw(final: boolean): void {
    if (this.#silent) return;
    const text = this.#tty ? `\r\x1b[2K${this.line()}${final ? "\n" : ""}` : `${this.line()}\n`;
    Deno.stderr.writeSync(this.#encoder.encode(text));
  }
}
