/**
 * Opt-in interactive view of figures in a browser through `nodeplotlib` (plotly.js). Never
 * called by tests or notebooks: nodeplotlib starts a local web server and the page loads
 * plotly.js from a CDN. Use it from scripts:
 *
 * ```ts ignore
 * import { histogram, showInteractive } from "../lib/plot/mod.ts";
 * await showInteractive(histogram([1, 2, 2, 3]));
 * ```
 *
 * @module
 */
import type { Figure, InteractiveSpec } from "./figure.ts";

interface NodePlotLib {
  plot(data: unknown[], layout?: Record<string, unknown>): void;
}

/** The plotly.js descriptions of `figures`; throws for a figure without one (image grids). */
export function interactiveSpecs(figures: Figure | readonly Figure[]): InteractiveSpec[] {
  const list = Array.isArray(figures) ? figures : [figures as Figure];
  return list.map((figure, i) => {
    if (!figure.interactive) {
      throw new Error(
        `figure ${i} (${figure.title ?? "untitled"}) has no interactive view; ` +
          "image grids are static: save them or show them in a notebook",
      );
    }
    return figure.interactive;
  });
}

/**
 * Opens `figures` in the browser with nodeplotlib (plotly.js). Starts nodeplotlib's local
 * server on a free port, which prints its address (`[Nodeplotlib] Server running at
 * http://localhost:PORT`) and tries to open a browser tab; the page loads plotly.js from a
 * CDN. The server keeps the process alive until the page has been served and closed.
 */
export async function showInteractive(figures: Figure | readonly Figure[]): Promise<void> {
  const specs = interactiveSpecs(figures);
  const nodeplotlib = (await import("nodeplotlib")) as unknown as NodePlotLib;
  for (const spec of specs) nodeplotlib.plot(spec.data, spec.layout);
}
