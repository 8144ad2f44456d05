"""The systems of the equal wall-clock benchmark, and how one run of a system is launched, capped and timed.

Every run is a fresh subprocess: ``python -m metalearn.benchmark.system_worker ARGS.json`` for the
metalearn systems, ``PYTHON benchmarks/peers/peer_worker.py ARGS.json`` for the peers (a standalone
script that never imports metalearn, so it runs in the separate peers virtualenv). The parent writes
the arguments, spawns the process with every thread-count variable pinned to the job's cores, and
measures wall-clock from the spawn; the worker writes ``result.json`` (test-part predictions and
``ready_at``, the wall-clock time at which its model was ready to predict). A process still alive at
the hard cap is killed with its whole process group.
"""

from __future__ import annotations

import faulthandler
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from metalearn.benchmark.config import parse_positive_ints
from metalearn.errors import MetalearnError
from metalearn.protocol import TASKS

#: environment variables that set the size of native thread pools (OpenMP, BLAS, numexpr, joblib's loky)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS", "LOKY_MAX_CPU_COUNT")
STATUSES = ("ok", "timeout", "crash")
METALEARN_WORKER = "metalearn.benchmark.system_worker"
PEER_WORKER = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "peer_worker.py"


@dataclass(frozen=True)
class System:
    """One system of the benchmark: which worker runs it, in which environment, with which options."""

    name: str
    kind: str  # "metalearn" (system_worker, project env) or "peer" (peer_worker.py)
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    peers_env_only: bool = False  # must run in the peers virtualenv (AutoGluon pins pandas < 2.4)
    module: str | None = None  # the import that must succeed in the worker's Python
    tasks: tuple[str, ...] = TASKS  # the tasks it makes sense for


SYSTEMS: dict[str, System] = {s.name: s for s in (
    System("metalearn", "metalearn", "WarmStartSearch, warm start + ensemble, leave-one-family-out",
           {"strategy": "warm"}),
    System("metalearn-cold", "metalearn", "WarmStartSearch, cold start (SMAC's Sobol design) + ensemble",
           {"strategy": "cold"}),
    System("flaml", "peer", "FLAML AutoML defaults, balanced-accuracy (regression: r2) metric", {}, module="flaml"),
    System("autogluon", "peer", "AutoGluon TabularPredictor defaults, eval_metric balanced_accuracy (regression: "
           "problem_type regression, eval_metric r2)", {"presets": None, "sample_weight": None}, True,
           "autogluon.tabular"),
    System("autogluon-balanced", "peer", "AutoGluon defaults with sample_weight='balance_weight'",
           {"presets": None, "sample_weight": "balance_weight"}, True, "autogluon.tabular", ("classification",)),
    System("autogluon-best", "peer", "AutoGluon presets='best_quality' with sample_weight='balance_weight'",
           {"presets": "best_quality", "sample_weight": "balance_weight"}, True, "autogluon.tabular",
           ("classification",)),
    System("hgb", "peer", "scikit-learn HistGradientBoostingClassifier (regression: HistGradientBoostingRegressor) "
           "defaults, ordinal-encoded categoricals", {}, module="sklearn"),
)}
DEFAULT_SYSTEMS = tuple(SYSTEMS)
REFERENCE = "metalearn"


def parse_systems(text: str | Sequence[str]) -> tuple[str, ...]:
    """Comma-separated (or listed) system names, checked and deduplicated in order."""
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        raise MetalearnError("give at least one system")
    unknown = [s for s in items if s not in SYSTEMS]
    if unknown:
        raise MetalearnError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    return tuple(dict.fromkeys(items))


def parse_budgets(text: str | Sequence[float]) -> tuple[int, ...]:
    """Comma-separated (or listed) positive whole numbers of seconds, sorted and deduplicated."""
    return parse_positive_ints(text, "seconds", "time budgets")


# --------------------------------------------------------------------------- the worker's environment


def thread_env(cores: int, peers: bool = False, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: every thread-count variable set to ``cores``; for the peers virtualenv,
    without the project's ``PYTHONPATH`` / ``PYTHONHOME``."""
    env = dict(os.environ if base is None else base)
    env.update({name: str(cores) for name in THREAD_VARIABLES})
    env["PYTHONUNBUFFERED"] = "1"
    if peers:
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
    return env


def pin_threads(cores: int, cpus: Sequence[int] | None = None) -> Any:
    """Inside a worker: limit native thread pools to ``cores`` (and the process to ``cpus`` when given).
    Returns the threadpoolctl limiter (keep a reference for the limits to hold)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))
    return threadpool_limits(limits=int(cores))


def dump_stacks_before_cap(args: dict[str, Any], lead: float = 3.0) -> None:
    """Inside a worker: write every thread's stack to stderr ``lead`` seconds before the hard cap, so the
    log of a run killed at its cap shows where it was."""
    if args.get("cap") is None:
        return
    left = float(args["spawned_at"]) + float(args["cap"]) - lead - time.time()
    faulthandler.dump_traceback_later(max(1.0, left), exit=False)


def read_args(path: str | Path) -> dict[str, Any]:
    """A worker's arguments (``args.json`` written by the parent)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    """Write a worker's ``result.json`` atomically (the parent never reads half a file)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    tmp.replace(path)


def label_text(value: Any) -> str:
    """A class label as text, the same for ``3``, ``3.0``, ``np.int64(3)`` and ``"3"`` (to score predictions)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item") and not isinstance(value, str):
        return label_text(value.item())
    return str(value)


# --------------------------------------------------------------------------- launching one run


@dataclass
class Outcome:
    """How one worker process ended: status, wall-clock from spawn to ready (``seconds``) and to exit, result."""

    status: str
    seconds: float
    process_seconds: float
    exit_code: int | None
    result: dict[str, Any] | None
    error: str | None = None


def _tail(path: Path, size: int = 2000) -> str:
    if not path.is_file():
        return ""
    return path.read_text(encoding="utf-8", errors="replace")[-size:].strip()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's process group (its forks: pynisher trials, Dask workers, AutoGluon's Ray)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Launcher:
    """Spawns worker processes, kills them at their hard cap, and all of them at once on :meth:`stop`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.stopping = False

    def stop(self) -> None:
        """Kill every running worker (Ctrl-C / SIGTERM of the parent): their runs record nothing."""
        with self._lock:
            self.stopping = True
            running = list(self._running)
        for process in running:
            _kill_group(process)

    def run(self, command: list[str], env: dict[str, str], args: dict[str, Any], workdir: Path,
            cap: float) -> Outcome:
        """Write ``args.json`` (with ``spawned_at``, the parent's wall-clock at the spawn), run the worker and
        time it; ``timeout`` when it is still running after ``cap`` seconds, ``crash`` without a result. The worker
        runs in ``workdir``, so every path it is given is absolute (a relative ``--output`` made each one miss)."""
        workdir = workdir.absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        args_path, result_path = workdir / "args.json", workdir / "result.json"
        result_path.unlink(missing_ok=True)
        spawned, start = time.time(), time.perf_counter()
        args = {**args, "spawned_at": spawned, "deadline": spawned + float(args["budget"]), "cap": cap,
                "result": str(result_path), "workdir": str(workdir)}
        args_path.write_text(json.dumps(args), encoding="utf-8")
        with (workdir / "stdout.log").open("wb") as out, (workdir / "stderr.log").open("wb") as err:
            if self.stopping:
                raise KeyboardInterrupt
            process = subprocess.Popen([*command, str(args_path)], env=env, cwd=workdir, stdout=out, stderr=err,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
            with self._lock:
                self._running.add(process)
            try:
                code: int | None = process.wait(timeout=cap)
                timed_out = False
            except subprocess.TimeoutExpired:
                code, timed_out = None, True
            finally:
                _kill_group(process)  # leftovers of a finished worker, or the whole worker at its cap
                process.wait()
                with self._lock:
                    self._running.discard(process)
        elapsed = time.perf_counter() - start
        if self.stopping:
            raise KeyboardInterrupt
        return _outcome(result_path, workdir, spawned, elapsed, code, timed_out)


def _outcome(result_path: Path, workdir: Path, spawned: float, elapsed: float, code: int | None,
             timed_out: bool) -> Outcome:
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else None
    if timed_out:
        return Outcome("timeout", elapsed, elapsed, None, None, f"killed at the hard cap after {elapsed:.1f} s")
    if result is None or result.get("status") != "ok" or code != 0:
        error = (result or {}).get("error") or _tail(workdir / "stderr.log") or f"exit code {code}, no result"
        return Outcome("crash", elapsed, elapsed, code, result, error)
    ready = result.get("ready_at")
    seconds = float(ready) - spawned if ready is not None else elapsed
    return Outcome("ok", seconds, elapsed, code, result)


def clean_workdir(workdir: Path, keep_logs: bool) -> None:
    """Remove a run's directory (models, data copies); with ``keep_logs`` keep its args and logs."""
    if not keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for path in workdir.iterdir() if workdir.is_dir() else []:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.suffix not in (".log", ".json"):
            path.unlink(missing_ok=True)


def worker_command(system: System, python: str | None, peer_worker: Path | None = None,
                   cpus: Sequence[int] | None = None) -> list[str]:
    """The command that runs ``system``'s worker (``taskset`` first when CPUs are pinned and it exists)."""
    python = python or sys.executable
    if system.kind == "metalearn":
        command = [python, "-m", METALEARN_WORKER]
    else:
        script = Path(peer_worker or PEER_WORKER)
        if not script.is_file():
            raise MetalearnError(f"peer worker script {script} not found (pass --peer-worker)")
        command = [python, str(script)]
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", ",".join(map(str, cpus)), *command]
    return command


@functools.lru_cache(maxsize=64)
def python_has(python: str, module: str, timeout: float = 120.0) -> bool:
    """Whether ``module`` imports in the interpreter ``python`` (checked in a subprocess)."""
    try:
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=timeout,
                              env=thread_env(1, peers=python != sys.executable))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
