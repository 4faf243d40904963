/**
 * Notebooks: the runner keeps late outputs, fails on cell errors and overrides parameters
 * (on a small notebook made here); SIGINT and timeouts shut the kernel down (real processes);
 * saved outputs carry the hash of the committed results they show, and CI fails on stale ones;
 * every notebook in notebooks/ runs headless with the small CI parameter set and each of its
 * figure cells produces a figure; an executed notebook's HTML export shows its figures; the
 * code cells type-check.
 *
 * Needs /usr/bin/python3 with python3-jupyter-client and python3-nbformat and the Deno
 * kernel (`deno jupyter --install`); `bash tools/run test` installs them. Without them the
 * tests are skipped outside CI and fail in CI.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  cellSource,
  checkNotebooks,
  declaredReads,
  downscalePng,
  executeNotebook,
  figureCells,
  hasOutputs,
  jupyterPython,
  missingFigures,
  type Notebook,
  notebookPaths,
  notebookToHtml,
  notebookToTypeScript,
  processAlive,
  readNotebook,
  readsHashes,
  SAVE_COMMAND,
  savedOutputProblem,
  saveNotebook,
  sha256File,
  SMALL_EXPERIMENT,
  SMALL_PARAMETERS,
  unformattedNotebooks,
} from "../tools/notebooks.ts";
import {
  type JupyterBroadcaster,
  ProgressBar,
  progressBundle,
  progressSink,
} from "../lib/progress.ts";
import { LiveCurves, parseEpochLine } from "../lib/plot/live.ts";
import { encode } from "fast-png";
import { Buffer } from "node:buffer";
import { shared } from "./_shared.ts";
import { dataDir, projectRoot } from "../lib/config.ts";
import { loadExperimentConfig } from "../lib/experiment/mod.ts";

function kernelAvailable(): boolean {
  try {
    const result = new Deno.Command(jupyterPython, {
      args: [
        "-c",
        "import nbformat\nfrom jupyter_client.kernelspec import KernelSpecManager as K\n" +
        "K().get_kernel_spec('deno')",
      ],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (result.success) return true;
  } catch {
    // no interpreter
  }
  const message = `${jupyterPython} with jupyter_client, nbformat and the Deno kernel ` +
    "('deno jupyter --install') are needed to run notebooks";
  if (Deno.env.get("CI")) throw new Error(message);
  console.warn(`skipping: ${message}`);
  return false;
}

const noKernel = !kernelAvailable();

function codeCell(source: string, tags: string[] = []) {
  return { cell_type: "code", source, metadata: tags.length ? { tags } : {}, outputs: [] };
}

function notebookOf(cells: ReturnType<typeof codeCell>[]): Notebook {
  return {
    cells,
    metadata: { kernelspec: { name: "deno", display_name: "Deno", language: "typescript" } },
    nbformat: 4,
    nbformat_minor: 4,
  };
}

function outputText(notebook: Notebook, cell: number): string {
  return (notebook.cells[cell].outputs ?? []).map((output) =>
    String(output.text ?? "") + JSON.stringify(output.data ?? {})
  ).join("");
}

Deno.test("notebook tools: figure check, code extraction with a line map back to cells", () => {
  const notebook = notebookOf([
    codeCell("const a = 1;\nconst b = 2;", ["parameters"]),
    codeCell("a + b", ["figure"]),
    codeCell("b", ["figure"]),
  ]);
  notebook.cells.splice(1, 0, { cell_type: "markdown", source: "# text", metadata: {} });
  notebook.cells[2].outputs = [{ output_type: "display_data", data: { "image/png": "AA==" } }];
  notebook.cells[3].outputs = [{ output_type: "execute_result", data: { "text/plain": "2" } }];
  assertEquals(figureCells(notebook), [2, 3]);
  assertEquals(missingFigures(notebook), [3]);
  const { code, lineCell, lineInCell } = notebookToTypeScript(notebook);
  const lines = code.split("\n");
  const at = lines.indexOf("const b = 2;");
  assertEquals([lineCell[at], lineInCell[at]], [0, 2]);
  const sum = lines.indexOf("a + b");
  assertEquals([lineCell[sum], lineInCell[sum]], [2, 1]);
  assert(!code.includes("# text"), "markdown cells are not code");
});

Deno.test("notebooks: one parameters cell first, figure cells tagged, outputs only as saved", async () => {
  const paths = notebookPaths();
  assertEquals(paths.length, 8);
  for (const path of paths) {
    const notebook = await readNotebook(path);
    const code = notebook.cells.filter((cell) => cell.cell_type === "code");
    assert(code[0].metadata.tags?.includes("parameters"), `${path}: first code cell`);
    assertEquals(
      code.filter((cell) => cell.metadata.tags?.includes("parameters")).length,
      1,
      `${path}: exactly one parameters cell`,
    );
    assert(figureCells(notebook).length > 0, `${path} has no figure cell`);
    // Outputs are allowed only as `deno task notebooks --save` writes them: with the hash of
    // the committed metrics.json they show, equal to the committed file's now.
    const problem = await savedOutputProblem(notebook, basename(path));
    assertEquals(problem, undefined, problem);
    assertEquals((notebook.metadata.kernelspec as { name: string }).name, "deno");
  }
});

Deno.test("notebooks 3, 5, 6, 7: experiment as config + overrides; small set loads, not committed", async () => {
  for (const path of notebookPaths().filter((p) => /^0[3567]_/.test(basename(p)))) {
    const notebook = await readNotebook(path);
    const parameters = cellSource(notebook.cells.find((cell) => cell.cell_type === "code")!);
    // One line each, as the runner overrides them (the small set would be ignored otherwise).
    assertMatch(parameters, /^const config = "[^"]+";/m, `${path}: config`);
    assertMatch(parameters, /^const overrides: ConfigOverrides = \{\};/m, `${path}: overrides`);
    assert(
      !/lib\/eval\/mod\.ts|resolveExperimentConfig|runConfig/.test(
        notebook.cells.map(cellSource).join("\n"),
      ),
      `${path} uses the old experiment API`,
    );
  }
  const cfg = await loadExperimentConfig(SMALL_EXPERIMENT.config, SMALL_EXPERIMENT.overrides);
  assertEquals(cfg.name, "notebooks-small");
  assertEquals(SMALL_PARAMETERS.config, SMALL_EXPERIMENT.config);
  // Notebook 6 shows committed results of the same name instead of running the experiment.
  assert(!existsSync(join(projectRoot, "results", cfg.name)), `results/${cfg.name} is committed`);
});

/** A fake `Deno.jupyter`: records the messages broadcast. */
function fakeJupyter(): JupyterBroadcaster & { messages: [string, Record<string, unknown>][] } {
  const messages: [string, Record<string, unknown>][] = [];
  return {
    messages,
    broadcast(type, content) {
      messages.push([type, content]);
      return Promise.resolve();
    },
  };
}

Deno.test("progress: the sink is a Jupyter display in a kernel, stderr elsewhere; one display updated", async () => {
  const jupyter = fakeJupyter();
  assertEquals(progressSink({ jupyter, tty: true }), "jupyter");
  assertEquals(progressSink({ jupyter, tty: false, silent: true }), "silent");
  assertEquals(progressSink({ tty: true }), "terminal");
  assertEquals(progressSink({ tty: false }), "log");
  // Outside a kernel (this test), reading Deno.jupyter throws: the bar falls back to stderr.
  const plain = new ProgressBar("plain", 10, { silent: true });
  assertEquals(plain.sink, "silent");
  assert(new ProgressBar("stderr", 10).sink !== "jupyter");

  const bar = new ProgressBar("embedding", 4, { unit: "reviews", jupyter });
  assertEquals(bar.sink, "jupyter");
  bar.update(1); // first draw: a display_data
  bar.update(2); // within 500 ms: not drawn
  bar.update(4);
  bar.finish(); // always drawn: an update of the same display
  await Promise.resolve();
  assertEquals(jupyter.messages.map(([type]) => type), ["display_data", "update_display_data"]);
  const ids = jupyter.messages.map(([, c]) => (c.transient as { display_id: string }).display_id);
  assertEquals(ids[0], ids[1]);
  assertEquals(ids[0], bar.displayId);
  const last = jupyter.messages[1][1].data as Record<string, string>;
  assertStringIncludes(last["text/plain"], "embedding [########################] 4/4 100%");
  assertStringIncludes(last["text/html"], '<progress value="1" max="1"');
  // The HTML escapes the line; no total: an indeterminate bar.
  const bundle = progressBundle("a <b> & c");
  assertStringIncludes(bundle["text/html"], "a &lt;b&gt; &amp; c");
  assertStringIncludes(bundle["text/html"], "<progress max=");
  // Deno 2.9's kernel broadcast returns nothing (not a promise): still one display.
  const sent: string[] = [];
  const sync = new ProgressBar("sync", 2, {
    jupyter: { broadcast: ((type: string) => void sent.push(type)) as never },
  });
  sync.update(1);
  sync.finish();
  assertEquals([sync.sink, ...sent], ["jupyter", "display_data", "update_display_data"]);
  // A kernel whose broadcast fails: the bar goes back to stderr lines.
  const broken = new ProgressBar("broken", 2, {
    silent: false,
    jupyter: { broadcast: () => Promise.reject(new Error("closed")) },
  });
  broken.update(1);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(broken.sink, "log");
});

Deno.test("live curves: runExperiment's epoch lines redraw one figure display", async () => {
  assertEquals(
    parseEpochLine("darknet_reference@1 epoch 3: train loss 0.6931, validation acc 0.5120"),
    {
      job: "darknet_reference@1",
      record: { epoch: 3, trainLoss: 0.6931, validationAccuracy: 0.512 },
    },
  );
  assertEquals(parseEpochLine("mlp@2 epoch 1: train loss 0.5"), {
    job: "mlp@2",
    record: { epoch: 1, trainLoss: 0.5 },
  });
  assertEquals(parseEpochLine("mlp@2: done, test rows 200"), undefined);
  const jupyter = fakeJupyter();
  const curves = new LiveCurves({ title: "live", jupyter, intervalMs: 0 });
  assert(curves.addLogLine("a@1 epoch 1: train loss 0.7, validation acc 0.5"));
  assert(!curves.addLogLine("a@1: done"));
  curves.add("b@1", { epoch: 1, trainLoss: 0.69, validationAccuracy: 0.55 });
  curves.add("a@1", { epoch: 2, trainLoss: 0.6, validationAccuracy: 0.6 });
  await curves.flush();
  assertEquals(curves.jobs, ["a@1", "b@1"]);
  const types = jupyter.messages.map(([type]) => type);
  assertEquals(types[0], "display_data");
  assert(types.slice(1).every((type) => type === "update_display_data"), types.join());
  assert(types.length >= 3);
  const ids = new Set(
    jupyter.messages.map(([, c]) => (c.transient as { display_id: string }).display_id),
  );
  assertEquals(ids.size, 1);
  const svg = (jupyter.messages.at(-1)![1].data as Record<string, string>)["image/svg+xml"];
  assertStringIncludes(svg, "<svg");
  // Outside a kernel nothing is sent; the last figure is kept.
  const quiet = new LiveCurves({ jupyter: null, intervalMs: 0 });
  quiet.add("a", { epoch: 1, trainLoss: 1 });
  await quiet.flush();
  assert(!quiet.display.active && quiet.display.last !== undefined);
});

/** A base64 PNG of `width`×`height` gray pixels. */
function pngBase64(width: number, height: number): string {
  const data = new Uint8Array(width * height).map((_, i) => i % 251);
  const bytes = encode({ width, height, data, channels: 1, depth: 8 });
  return Buffer.from(bytes).toString("base64");
}

Deno.test("saved outputs: volatile metadata stripped, PNGs downscaled, hash checked against the committed results", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(root, "results", "fake"), { recursive: true });
    const metrics = join(root, "results", "fake", "metrics.json");
    await Deno.writeTextFile(metrics, '{"name": "fake"}\n');
    const hash = await sha256File(metrics);
    assertMatch(hash, /^[0-9a-f]{64}$/);
    const executed = notebookOf([
      codeCell("const a = 1;", ["parameters"]),
      codeCell("a", ["figure"]),
      codeCell(""),
      codeCell("b"),
    ]);
    executed.metadata.executed_with_parameters = { a: 2 };
    executed.metadata.papermill = { start_time: "2024-01-01" };
    executed.cells[1].metadata.execution = { "iopub.status.busy": "2024-01-01T00:00:00Z" };
    executed.cells[1].execution_count = 7;
    executed.cells[1].outputs = [
      { output_type: "stream", name: "stdout", text: `caches in ${projectRoot}/data/x\n` },
      { output_type: "display_data", data: { "image/png": pngBase64(2000, 30) }, metadata: {} },
      {
        output_type: "execute_result",
        execution_count: 7,
        data: { "image/png": pngBase64(40, 30) },
        metadata: {},
        transient: { display_id: "x" },
      },
    ];
    executed.cells[3].execution_count = 9;
    executed.cells[3].outputs = [{ output_type: "stream", name: "stdout", text: "b\n" }];
    const saved = saveNotebook(executed, {
      results: "results/fake/metrics.json",
      results_sha256: hash,
      saved_with: SAVE_COMMAND,
    });
    assertEquals(executed.metadata.executed_with_parameters, { a: 2 }, "input left as it was");
    assertEquals(Object.keys(saved.metadata).sort(), ["kernelspec", "text_as_image"]);
    assertEquals(saved.cells[1].metadata, { tags: ["figure"] });
    assertEquals(saved.cells.map((cell) => cell.execution_count), [null, 1, null, 2]);
    const outputs = saved.cells[1].outputs!;
    assertEquals(outputs[0].text, "caches in ./data/x\n");
    const big = Buffer.from(outputs[1].data!["image/png"] as string, "base64");
    const view = new DataView(big.buffer, big.byteOffset, big.byteLength);
    assertEquals([view.getUint32(16), view.getUint32(20)], [666, 10], "2000 px wide / 3");
    assertEquals(outputs[2].data!["image/png"], executed.cells[1].outputs![2].data!["image/png"]);
    assertEquals(outputs[2].execution_count, 1);
    assertEquals(outputs[2].transient, undefined);
    assertEquals(downscalePng(pngBase64(10, 10)), pngBase64(10, 10));

    // CI: no outputs is fine; outputs need the record; the hash must be the committed file's.
    assertEquals(await savedOutputProblem(notebookOf([codeCell("a")]), "empty", root), undefined);
    assertEquals(await savedOutputProblem(saved, "saved", root), undefined);
    assert(hasOutputs(saved));
    const unsaved = await savedOutputProblem(executed, "unsaved", root);
    assertStringIncludes(unsaved!, SAVE_COMMAND);
    await Deno.writeTextFile(metrics, '{"name": "fake", "regenerated": true}\n');
    const stale = await savedOutputProblem(saved, "stale.ipynb", root);
    assertStringIncludes(stale!, "stale.ipynb: its outputs were made from an older");
    assertStringIncludes(stale!, `run \`${SAVE_COMMAND}\``);
    await Deno.remove(metrics);
    assertStringIncludes((await savedOutputProblem(saved, "gone", root))!, "not committed");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("unformattedNotebooks: byte-for-byte against deno fmt, not deno fmt --check", async () => {
  const dir = await Deno.makeTempDir({ prefix: "notebook-fmt-" });
  try {
    const committed = notebookPaths()[0];
    const good = join(dir, "good.ipynb");
    await Deno.copyFile(committed, good);
    const bad = join(dir, "bad.ipynb");
    const notebook = await readNotebook(committed);
    notebook.cells.push({ cell_type: "code", metadata: {}, source: ["const  x=1"], outputs: [] });
    await Deno.writeTextFile(bad, JSON.stringify(notebook, null, 1) + "\n");
    const found = await unformattedNotebooks([good, bad]);
    assertEquals(found.map((p) => basename(p)), ["bad.ipynb"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saved outputs: other results a notebook declares it shows are hashed and checked", async () => {
  const root = await Deno.makeTempDir({ prefix: "notebook-reads-" });
  try {
    const metrics = join(root, "results", "run", "metrics.json");
    const study = join(root, "results", "study", "metrics.json");
    await Deno.mkdir(dirname(metrics), { recursive: true });
    await Deno.writeTextFile(metrics, "{}\n");
    const executed = notebookOf([codeCell("a")]);
    executed.cells[0].outputs = [{ output_type: "stream", name: "stdout", text: "x\n" }];
    executed.metadata.text_as_image_reads = ["results/study/metrics.json"];
    const save = async () =>
      saveNotebook(executed, {
        results: "results/run/metrics.json",
        results_sha256: await sha256File(metrics),
        saved_with: SAVE_COMMAND,
        also: await readsHashes(declaredReads(executed), root),
      });
    // Saved before the study existed: fine until it appears.
    const before = await save();
    assertEquals(before.metadata.text_as_image, {
      results: "results/run/metrics.json",
      results_sha256: await sha256File(metrics),
      saved_with: SAVE_COMMAND,
      also: [{ results: "results/study/metrics.json", results_sha256: null }],
    });
    assertEquals(await savedOutputProblem(before, "n.ipynb", root), undefined);
    await Deno.mkdir(dirname(study), { recursive: true });
    await Deno.writeTextFile(study, '{"a": 1}\n');
    assertStringIncludes(
      (await savedOutputProblem(before, "n.ipynb", root))!,
      "when results/study/metrics.json did not exist",
    );
    const after = await save();
    assertEquals(await savedOutputProblem(after, "n.ipynb", root), undefined);
    await Deno.writeTextFile(study, '{"a": 2}\n');
    assertStringIncludes((await savedOutputProblem(after, "n.ipynb", root))!, "was different");
    // A declared file with no record at all (saved by an older tool) is reported too.
    const { also: _also, ...bare } = after.metadata.text_as_image as Record<string, unknown>;
    const old = { ...after, metadata: { ...after.metadata, text_as_image: bare } };
    assertStringIncludes((await savedOutputProblem(old, "n.ipynb", root))!, "record no hash");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** Waits until `log()` matches `pattern` (or `ms` pass); returns the match. */
async function waitFor(log: () => string, pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const match = log().match(pattern);
    if (match) return match;
    if (Date.now() > end) throw new Error(`no ${pattern} within ${ms} ms:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Waits until none of `pids` is alive (or `ms` pass); returns those still alive. */
async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  for (;;) {
    const alive = pids.filter(processAlive);
    if (alive.length === 0 || Date.now() > end) return alive;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

Deno.test({
  name:
    "runner: SIGINT to `deno task notebooks` and timeouts shut the kernel down (real processes)",
  ignore: noKernel,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const started: number[] = [];
    try {
      const input = join(dir, "busy.ipynb");
      // A cell that keeps the kernel busy, as training does.
      await Deno.writeTextFile(
        input,
        JSON.stringify(notebookOf([
          codeCell("const minutes = 10;", ["parameters"]),
          codeCell(
            'console.log("busy");\nconst end = Date.now() + minutes * 60_000;\n' +
              "while (Date.now() < end) Math.sqrt(Math.random());",
          ),
        ])),
      );
      // 1. Ctrl-C: SIGINT to the Deno process of `deno task notebooks`.
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(projectRoot, "tools", "notebooks.ts"), input, "--out", dir],
        stdout: "null",
        stderr: "piped",
        cwd: projectRoot,
      }).spawn();
      started.push(child.pid);
      let log = "";
      const decoder = new TextDecoder();
      const reading = (async () => {
        for await (const chunk of child.stderr) log += decoder.decode(chunk, { stream: true });
      })();
      const [, runner, kernel] = await waitFor(
        () => log,
        /runner pid (\d+), kernel pid (\d+)/,
        120_000,
      );
      started.push(Number(runner), Number(kernel));
      await waitFor(() => log, /cell 1 \[2\/2\]/, 60_000);
      assert(processAlive(Number(kernel)), "the kernel runs the busy cell");
      child.kill("SIGINT");
      const status = await child.status;
      await reading;
      assertEquals(status.code, 130, log);
      assertStringIncludes(log, "stopped by SIGINT; its kernel was shut down");
      assertEquals(await waitGone([Number(runner), Number(kernel)], 10_000), [], log);

      // 2. The notebook's timeout: the runner stops the busy cell and shuts the kernel down.
      const timed = await executeNotebook(input, {
        output: join(dir, "timed.ipynb"),
        notebookTimeout: 8,
        relay: false,
      });
      assert(!timed.ok);
      assertEquals(timed.interrupted, "timeout");
      assert(timed.pids, timed.log);
      started.push(timed.pids.runner, timed.pids.kernel);
      assertEquals(await waitGone([timed.pids.runner, timed.pids.kernel], 10_000), [], timed.log);

      // 3. SIGTERM to the runner itself (e.g. a killed CI job).
      const runnerChild = new Deno.Command(jupyterPython, {
        args: [join(projectRoot, "tools", "run_notebook.py"), input, "-o", join(dir, "t.ipynb")],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      started.push(runnerChild.pid);
      let runnerLog = "";
      const readingRunner = (async () => {
        for await (const chunk of runnerChild.stderr) {
          runnerLog += decoder.decode(chunk, { stream: true });
        }
      })();
      const [, , kernel3] = await waitFor(
        () => runnerLog,
        /runner pid (\d+), kernel pid (\d+)/,
        120_000,
      );
      started.push(Number(kernel3));
      await waitFor(() => runnerLog, /cell 1 \[2\/2\]/, 60_000);
      runnerChild.kill("SIGTERM");
      assertEquals((await runnerChild.status).code, 130, runnerLog);
      await readingRunner;
      assertEquals(await waitGone([Number(kernel3)], 10_000), [], runnerLog);
    } finally {
      for (const pid of started.filter(processAlive)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "--save on a fixture with a fake results folder: hash recorded, stale fails; HTML shows figures",
  ignore: noKernel,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const results = join(dir, "results");
      await Deno.mkdir(join(results, "fake"), { recursive: true });
      const metrics = join(results, "fake", "metrics.json");
      await Deno.writeTextFile(metrics, '{"accuracy": 0.5}\n');
      const input = join(dir, "fixture.ipynb");
      const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>';
      await Deno.writeTextFile(
        input,
        JSON.stringify(notebookOf([
          codeCell('const results = "fake";', ["parameters"]),
          codeCell(
            `({ [Symbol.for("Jupyter.display")]() { return { "image/svg+xml": ${
              JSON.stringify(svg)
            } }; } })`,
            ["figure"],
          ),
          codeCell(
            `Deno.jupyter.display({ "image/png": ${JSON.stringify(pngBase64(1600, 8))} }, ` +
              "{ raw: true });",
            ["figure"],
          ),
        ])),
      );
      const out = join(dir, "out");
      const cli = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(projectRoot, "tools", "notebooks.ts"),
          "--save",
          "--results",
          results,
          "--run",
          "fake",
          "--out",
          out,
          "--html",
          input,
        ],
        cwd: projectRoot,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(cli.stderr);
      assert(cli.success, log);
      assertMatch(log, /fixture\.ipynb: saved to .* KiB, figures \d+ KiB\)/);
      assertMatch(log, /saved 1 notebooks with outputs, \d+ KiB in all/);
      const saved = await readNotebook(join(out, "fixture.ipynb"));
      const record = saved.metadata.text_as_image as { results: string; results_sha256: string };
      assertEquals(record.results_sha256, await sha256File(metrics));
      assertEquals(await savedOutputProblem(saved, "fixture.ipynb"), undefined);
      assertEquals(missingFigures(saved), []);
      const png = saved.cells[2].outputs!.find((o) => o.data?.["image/png"])!;
      const bytes = Buffer.from(png.data!["image/png"] as string, "base64");
      assertEquals(new DataView(bytes.buffer, bytes.byteOffset).getUint32(16), 800);
      // The HTML export (nbconvert) holds both figures.
      const html = await notebookToHtml(join(out, "fixture.ipynb"), join(dir, "html"));
      assertStringIncludes(html.html, "<svg");
      assertStringIncludes(html.html, "<img");
      assert(html.figures >= 2, `${html.figures} figures in ${html.path}`);
      // Results regenerated after saving: CI names the command.
      await Deno.writeTextFile(metrics, '{"accuracy": 0.6}\n');
      assertStringIncludes((await savedOutputProblem(saved, "fixture.ipynb"))!, SAVE_COMMAND);
      // --save into notebooks/ refuses the small parameters.
      const refused = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(projectRoot, "tools", "notebooks.ts"), "--save", "--small"],
        cwd: projectRoot,
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(refused.code, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "runner: late outputs kept, parameters overridden, cell errors fail and name the cell",
  ignore: noKernel,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const input = join(dir, "fixture.ipynb");
      const display =
        `({ [Symbol.for("Jupyter.display")]() { return { "image/png": "iVBORw0KGgo=" }; } })`;
      await Deno.writeTextFile(
        input,
        JSON.stringify(notebookOf([
          codeCell(
            'const n = 2; // count\nconst word: string = "before";\n' +
              'const mode = "a" as "a" | "b"; // a choice',
            ["parameters"],
          ),
          codeCell("console.log(`n=${n * 10} word=${word} mode=${mode}`);"),
          // Output published after the cell reported idle: printed 300 ms later.
          codeCell('setTimeout(() => console.log("late output"), 300);\n"returned";'),
          // A figure displayed late, from a timer.
          codeCell(`setTimeout(() => Deno.jupyter.display(${display}), 200);`, ["figure"]),
        ])),
      );
      const output = join(dir, "out.ipynb");
      const ok = await executeNotebook(input, {
        output,
        parameters: { n: 7, word: "after", mode: "b", notDeclared: 1 },
        quiet: 1,
      });
      assert(ok.ok, ok.log);
      const executed = ok.notebook!;
      assertStringIncludes(outputText(executed, 1), "n=70 word=after mode=b");
      assertStringIncludes(
        executed.cells[0].source as string,
        'const mode = "b" as "a" | "b"; // overridden (was "a")',
      );
      assertStringIncludes(outputText(executed, 2), "late output");
      assertStringIncludes(outputText(executed, 2), "returned");
      assertEquals(figureCells(executed), [3]);
      assertEquals(missingFigures(executed), []);

      // Strict mode rejects a parameter the notebook does not declare.
      const strict = await executeNotebook(input, {
        output,
        parameters: { notDeclared: 1 },
        ignoreUnknown: false,
      });
      assert(!strict.ok);
      assertStringIncludes(strict.log, "notDeclared");

      // A failing cell stops the run, names the cell, and its error is in the notebook.
      const failing = join(dir, "failing.ipynb");
      await Deno.writeTextFile(
        failing,
        JSON.stringify(notebookOf([
          codeCell("const a = 1;"),
          codeCell('throw new Error("deliberate failure");'),
          codeCell('console.log("never runs");'),
        ])),
      );
      const failed = await executeNotebook(failing, { output, quiet: 0.5 });
      assert(!failed.ok);
      assertStringIncludes(failed.log, "cell 1 failed");
      assertStringIncludes(failed.log, "deliberate failure");
      assertEquals(failed.notebook!.cells[1].outputs![0].output_type, "error");
      assertEquals(failed.notebook!.cells[2].outputs, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("notebooks: code cells type-check", async () => {
  assert(await checkNotebooks(notebookPaths()), "see the type errors above");
});

const imdb = shared("data", "aclImdb_v1-labelled.tar.gz");

Deno.test({
  name: "notebooks: each runs with the small parameter set and draws every figure",
  ignore: noKernel || imdb.ignore,
  sanitizeResources: false,
  fn: async (t) => {
    const outDir = join(dataDir(), "notebooks-test");
    await Deno.mkdir(outDir, { recursive: true });
    const paths = notebookPaths();
    assert(paths.length > 0, "no notebooks found");
    for (const path of paths) {
      const name = path.slice(path.lastIndexOf("/") + 1);
      await t.step(name, async () => {
        const result = await executeNotebook(path, {
          output: join(outDir, name),
          parameters: { ...SMALL_PARAMETERS },
          quiet: 1,
        });
        assert(result.ok, `${name} failed:\n${result.log.slice(-3000)}`);
        const notebook = result.notebook!;
        assert(figureCells(notebook).length > 0, `${name} has no cell tagged "figure"`);
        assertEquals(missingFigures(notebook), [], `${name}: figure cells without a figure`);
        if (name.startsWith("01_")) {
          // The HTML export of an executed notebook shows its figures.
          const html = await notebookToHtml(join(outDir, name), join(outDir, "html"));
          assert(html.figures >= figureCells(notebook).length, `${html.path}: figures missing`);
        }
      });
    }
  },
});
