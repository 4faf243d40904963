#!/usr/bin/python3
"""Execute a Jupyter notebook headless in the Deno kernel, without losing outputs.

Why not `jupyter nbconvert --execute`: the Deno kernel sometimes publishes a cell's results
(display data, stream text) *after* it has reported the cell idle, and nbconvert stops
listening at idle, so outputs go missing at random. This runner executes cell by cell with
jupyter_client and, after the idle status, keeps reading the IOPub channel until it has been
quiet for a while (`--quiet`, default 1 s). Messages that arrive even later are still filed
under the cell that produced them (matched by the request's message id).

It fails (exit status 1, naming the cell) on any cell error, writes the executed notebook
with its outputs (also when a cell failed, so the error can be read there), and can override
the values of the notebook's parameters cell.

Parameters cell: the first code cell tagged `parameters` (cell metadata `"tags":
["parameters"]`). Each parameter is one line `const NAME = VALUE;` (or `let`), optionally
with a type annotation or a trailing `as TYPE` (kept), and a trailing `// comment`. `--params '{"NAME": VALUE}'` replaces
VALUE with the JSON text of the override (valid TypeScript for numbers, strings, booleans,
arrays and objects).

Usage:
  /usr/bin/python3 tools/run_notebook.py NOTEBOOK.ipynb [-o OUT.ipynb]
      [--params JSON] [--params-file FILE] [--ignore-unknown]
      [--timeout SECONDS] [--quiet SECONDS] [--kernel deno] [--cwd DIR] [--echo]

Stopping: SIGINT (Ctrl-C), SIGTERM or SIGHUP, a cell's `--timeout`, the whole run's
`--notebook-timeout`, or the parent process going away (the runner checks its parent id) all
end the same way: the kernel is shut down at once (`shutdown_kernel(now=True)`, then SIGKILL to
its process group, which jupyter_client starts as a new session, so that anything the kernel
started goes too), the notebook is written with what it has, and the runner exits with status
130 (signal) or 1 (timeout, error). It logs `runner pid R, kernel pid K` once the kernel runs.

Needs Debian's python3-jupyter-client and python3-nbformat (use /usr/bin/python3) and the
Deno kernel (`deno jupyter --install --force`).
"""

import argparse
import json
import os
import queue
import re
import signal
import sys
import time

import nbformat
from jupyter_client.manager import KernelManager

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PARAM_LINE = re.compile(
    r"^(?P<head>\s*(?:export\s+)?(?:const|let|var)\s+)(?P<name>[A-Za-z_$][\w$]*)"
    r"(?P<eq>\s*(?::[^=]+?)?\s*=\s*)(?P<value>.+?)(?P<cast>\s+as\s+[^;]+?)?"
    r"(?P<tail>\s*;\s*(?://.*)?)$"
)


class CellError(Exception):
    """A cell raised an error or timed out."""


class Interrupted(BaseException):
    """A signal (SIGINT, SIGTERM, SIGHUP) or the parent's exit: stop and shut the kernel down."""


class Watch:
    """Deadline of the whole run and the parent process that must stay alive."""

    def __init__(self, notebook_timeout):
        self.deadline = time.monotonic() + notebook_timeout if notebook_timeout else None
        self.parent = os.getppid()

    def check(self):
        if os.getppid() != self.parent:
            raise Interrupted("the parent process exited")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise CellError("the notebook ran past its --notebook-timeout")


def on_signal(signum, _frame):
    # Later signals during the shutdown are ignored: the shutdown itself must finish.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def kill_kernel(km):
    """Shuts the kernel down now and kills its process group; never raises."""
    pid = pgid = None
    provisioner = getattr(km, "provisioner", None)
    if provisioner is not None:
        pid = getattr(provisioner, "pid", None)
        pgid = getattr(provisioner, "pgid", None)
    try:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    except Exception as error:  # noqa: BLE001 - the kill below still runs
        log(f"  (kernel shutdown: {error})")
    # The kernel runs in its own session (start_new_session): its group is its own.
    if pgid and pgid != os.getpgid(0):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def log(text):
    print(text, file=sys.stderr, flush=True)


def parameters_cell(nb):
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return None


def apply_parameters(nb, overrides, ignore_unknown=False):
    """Replaces the values of the parameters cell's declarations; returns names applied."""
    if not overrides:
        return []
    index = parameters_cell(nb)
    if index is None:
        raise SystemExit(
            "no code cell tagged 'parameters' in the notebook: tag the parameters cell "
            '(cell metadata {"tags": ["parameters"]}) to override values'
        )
    cell = nb.cells[index]
    lines = cell.source.split("\n")
    applied = []
    for i, line in enumerate(lines):
        match = PARAM_LINE.match(line)
        if match and match.group("name") in overrides:
            name = match.group("name")
            value = json.dumps(overrides[name])
            lines[i] = (
                match.group("head") + name + match.group("eq") + value
                + (match.group("cast") or "")
                + match.group("tail").split("//")[0].rstrip()
                + f" // overridden (was {match.group('value')})"
            )
            applied.append(name)
    unknown = sorted(set(overrides) - set(applied))
    if unknown and not ignore_unknown:
        raise SystemExit(
            f"parameters {unknown} are not declared in the parameters cell (cell {index}); "
            "declare each as one line `const NAME = VALUE;` or pass --ignore-unknown"
        )
    cell.source = "\n".join(lines)
    return applied


class Collector:
    """Files IOPub messages under the cell whose request produced them."""

    def __init__(self, echo):
        self.cells = {}  # msg_id -> {"cell": cell, "idle": bool, "last": time, "error": msg}
        self.echo = echo
        self.display_ids = {}  # display_id -> list of output dicts

    def register(self, msg_id, cell):
        self.cells[msg_id] = {"cell": cell, "idle": False, "last": time.monotonic(), "error": None,
                              "clear_pending": False}

    def handle(self, msg, current):
        parent = msg.get("parent_header", {}).get("msg_id")
        entry = self.cells.get(parent)
        if entry is None:
            return
        entry["last"] = time.monotonic()
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        cell = entry["cell"]
        if parent != current and kind not in ("status", "execute_input"):
            log(f"  (late {kind} output filed under an earlier cell)")
        if kind == "status":
            if content.get("execution_state") == "idle":
                entry["idle"] = True
            return
        if kind in ("execute_input", "comm_open", "comm_msg", "comm_close"):
            return
        if kind == "clear_output":
            if content.get("wait"):
                entry["clear_pending"] = True
            else:
                cell.outputs = []
            return
        if kind == "update_display_data":
            display_id = content.get("transient", {}).get("display_id")
            for output in self.display_ids.get(display_id, []):
                output["data"] = content.get("data", {})
                output["metadata"] = content.get("metadata", {})
            return
        if kind not in ("stream", "display_data", "execute_result", "error"):
            return
        if entry["clear_pending"]:
            cell.outputs = []
            entry["clear_pending"] = False
        if kind == "error":
            entry["error"] = content
        if kind == "stream" and self.echo:
            stream = sys.stdout if content.get("name") == "stdout" else sys.stderr
            stream.write(content.get("text", ""))
            stream.flush()
        output = nbformat.v4.output_from_msg(msg)
        if (kind == "stream" and cell.outputs and cell.outputs[-1].get("output_type") == "stream"
                and cell.outputs[-1].get("name") == output.get("name")):
            cell.outputs[-1]["text"] += output["text"]
        else:
            cell.outputs.append(output)
        display_id = content.get("transient", {}).get("display_id")
        if display_id:
            self.display_ids.setdefault(display_id, []).append(output)


def error_text(content):
    if not content:
        return "unknown error"
    trace = "\n".join(content.get("traceback") or [])
    text = trace or f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
    return ANSI.sub("", text)


def execute_cell(kc, collector, cell, index, timeout, quiet, watch):
    msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=True)
    collector.register(msg_id, cell)
    entry = collector.cells[msg_id]
    deadline = time.monotonic() + timeout
    reply = None
    while True:
        watch.check()
        now = time.monotonic()
        if now > deadline:
            raise CellError(f"cell {index} timed out after {timeout:.0f} s")
        if entry["idle"] and reply is not None and now - entry["last"] >= quiet:
            break
        # The execute reply arrives on the shell channel, usually near the idle status.
        if reply is None:
            try:
                shell = kc.get_shell_msg(timeout=0.05)
                if shell.get("parent_header", {}).get("msg_id") == msg_id:
                    reply = shell
            except queue.Empty:
                pass
        try:
            wait = 0.1 if reply is None else max(0.05, quiet - (time.monotonic() - entry["last"]))
            msg = kc.get_iopub_msg(timeout=wait)
        except queue.Empty:
            continue
        collector.handle(msg, msg_id)
    status = reply["content"].get("status")
    cell.execution_count = reply["content"].get("execution_count")
    for output in cell.outputs:
        if output.get("output_type") == "execute_result":
            output["execution_count"] = cell.execution_count
    if status != "ok" or entry["error"] is not None:
        content = entry["error"] or reply["content"]
        raise CellError(f"cell {index} failed:\n{error_text(content)}")


def first_line(source):
    for line in source.split("\n"):
        if line.strip():
            return line.strip()[:70]
    return ""


def run(args):
    nb = nbformat.read(args.notebook, as_version=4)
    overrides = {}
    if args.params_file:
        with open(args.params_file) as f:
            overrides.update(json.load(f))
    if args.params:
        overrides.update(json.loads(args.params))
    applied = apply_parameters(nb, overrides, args.ignore_unknown)
    if applied:
        nb.metadata["executed_with_parameters"] = {name: overrides[name] for name in applied}
    output_path = args.output or args.notebook
    cwd = args.cwd or os.path.dirname(os.path.abspath(args.notebook))
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for _, cell in code_cells:
        cell.outputs = []
        cell.execution_count = None
    watch = Watch(args.notebook_timeout)
    km = KernelManager(kernel_name=args.kernel)
    kc = None
    failure = None
    interrupted = None
    try:
        log(f"{args.notebook}: starting kernel '{args.kernel}' in {cwd}")
        km.start_kernel(cwd=cwd, env=os.environ.copy())
        log(f"  runner pid {os.getpid()}, kernel pid {km.provisioner.pid}")
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=args.startup_timeout)
        collector = Collector(args.echo)
        for number, (index, cell) in enumerate(code_cells, 1):
            if not cell.source.strip():
                continue
            started = time.monotonic()
            log(f"  cell {index} [{number}/{len(code_cells)}] {first_line(cell.source)}")
            try:
                execute_cell(kc, collector, cell, index, args.timeout, args.quiet, watch)
            except CellError as error:
                failure = str(error)
                break
            log(f"    ok in {time.monotonic() - started:.1f} s, {len(cell.outputs)} output(s)")
        # Anything still arriving is filed under its cell.
        end = time.monotonic() + args.quiet
        while time.monotonic() < end:
            try:
                collector.handle(kc.get_iopub_msg(timeout=0.1), None)
            except queue.Empty:
                pass
    except Interrupted as stop:
        interrupted = str(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if kc is not None:
            kc.stop_channels()
        kill_kernel(km)
    if interrupted:
        log(f"{args.notebook}: {interrupted}; kernel shut down")
        try:
            nbformat.write(nb, output_path)
        except Exception:  # noqa: BLE001 - stopping matters more than the partial notebook
            pass
        return 130
    nbformat.write(nb, output_path)
    if failure:
        log(f"{args.notebook}: FAILED: {failure}")
        log(f"(executed notebook with the error written to {output_path})")
        return 1
    log(f"{args.notebook}: ok, written to {output_path}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("-o", "--output", help="where to write the executed notebook "
                        "(default: overwrite the input)")
    parser.add_argument("--params", help="JSON object of parameter overrides")
    parser.add_argument("--params-file", help="JSON file of parameter overrides")
    parser.add_argument("--ignore-unknown", action="store_true",
                        help="skip overrides the parameters cell does not declare")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per cell")
    parser.add_argument("--notebook-timeout", type=float, default=0,
                        help="seconds for the whole notebook (0: no limit)")
    parser.add_argument("--startup-timeout", type=float, default=120)
    parser.add_argument("--quiet", type=float, default=1.0,
                        help="seconds of IOPub silence after idle before a cell is done")
    parser.add_argument("--kernel", default="deno")
    parser.add_argument("--cwd", help="kernel working directory (default: the notebook's)")
    parser.add_argument("--echo", action="store_true", help="echo cells' stdout/stderr")
    args = parser.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        status = run(args)
    except Interrupted as stop:  # before the kernel started
        log(f"{args.notebook}: {stop}")
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    main()
