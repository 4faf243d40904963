/**
 * Notebooks: the runner keeps late outputs, fails on cell errors and overrides parameters
 * (on a small notebook made here); every notebook in notebooks/ runs headless with the
 * small CI parameter set and each of its figure cells produces a figure; the code cells
 * type-check.
 *
 * Needs /usr/bin/python3 with python3-jupyter-client and python3-nbformat and the Deno
 * kernel (`deno jupyter --install`); `bash tools/run test` installs them. Without them the
 * tests are skipped outside CI and fail in CI.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import {
  cellSource,
  checkNotebooks,
  executeNotebook,
  figureCells,
  jupyterPython,
  missingFigures,
  type Notebook,
  notebookPaths,
  notebookToTypeScript,
  readNotebook,
  SMALL_EXPERIMENT,
  SMALL_PARAMETERS,
} from "../tools/notebooks.ts";
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

Deno.test("notebooks: one parameters cell first, figure cells tagged, no outputs committed", async () => {
  const paths = notebookPaths();
  assertEquals(paths.length, 7);
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
    assert(code.every((cell) => (cell.outputs ?? []).length === 0), `${path} has outputs`);
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
      });
    }
  },
});
