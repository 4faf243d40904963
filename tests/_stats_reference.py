"""Reference values for tests/eval_stats_test.ts, from SciPy and NumPy.

Reads one JSON request on stdin and writes one JSON answer on stdout. Requests (by "task"):

  t_ppf           {"cases": [[p, df], ...]}          -> [scipy.stats.t.ppf(p, df), ...]
  seed_summary    {"values": [...]}                  -> mean, sd (ddof=1) and
                                                        scipy.stats.t.interval(0.95, ...)
  bootstrap_scipy {"a": [0/1...], "b": [...],        -> scipy.stats.bootstrap, paired,
                   "n_resamples", "seed"}               percentile interval (one seed)
  bootstrap_two_level {"a": [[0/1...] per seed], "b": [[...]] (one per seed or one),
                   "n_resamples", "seed", "confidence"}
                                                     -> an independent NumPy implementation
                                                        of the paired bootstrap over seeds and
                                                        test rows together
  contrast_two_level {"terms": [{"weight", "correct": [[0/1...] per seed, or one]}],
                   "n_resamples", "seed", "confidence"}
                                                     -> the same bootstrap of a weighted sum of terms

Needs /usr/bin/python3 with Debian's python3-scipy (and python3-numpy).
"""

import inspect
import json
import sys

import numpy as np
from scipy import stats


def t_ppf(req):
    return [float(stats.t.ppf(p, df)) for p, df in req["cases"]]


def seed_summary(req):
    x = np.asarray(req["values"], dtype=np.float64)
    n = len(x)
    mean = float(x.mean())
    sd = float(x.std(ddof=1))
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / np.sqrt(n))
    return {"mean": mean, "sd": sd, "ci95": [float(lo), float(hi)]}


def bootstrap_scipy(req):
    a = np.asarray(req["a"], dtype=np.float64)
    b = np.asarray(req["b"], dtype=np.float64)
    rng = np.random.default_rng(req["seed"])
    # SciPy 1.15 renamed random_state to rng; Debian bookworm ships 1.10.
    key = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    res = stats.bootstrap(
        (a, b),
        statistic=lambda x, y, axis=-1: np.mean(x - y, axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=req["n_resamples"],
        confidence_level=0.95,
        **{key: rng},
    )
    ci = res.confidence_interval
    return {"ci": [float(ci.low), float(ci.high)], "se": float(res.standard_error)}


def bootstrap_two_level(req):
    a = np.asarray(req["a"], dtype=np.int64)  # [S, N]
    b = np.asarray(req["b"], dtype=np.int64)  # [S, N] or [1, N]
    if b.shape[0] == 1:
        b = np.repeat(b, a.shape[0], axis=0)
    S, N = a.shape
    B = req["n_resamples"]
    rng = np.random.default_rng(req["seed"])
    dist = np.empty(B)
    for r in range(B):
        seeds = rng.integers(0, S, size=S)  # seeds with replacement
        rows = rng.integers(0, N, size=N)  # rows with replacement, shared by every drawn seed
        dist[r] = np.mean(a[seeds][:, rows] - b[seeds][:, rows])
    alpha = (1 - req["confidence"]) / 2
    p = min(
        1.0,
        2 * min((1 + np.sum(dist <= 0)) / (B + 1), (1 + np.sum(dist >= 0)) / (B + 1)),
    )
    return {
        "difference": float(np.mean(a - b)),
        "ci": [
            float(np.percentile(dist, 100 * alpha)),
            float(np.percentile(dist, 100 * (1 - alpha))),
        ],
        "pValue": float(p),
        "se": float(dist.std(ddof=1)),
    }


def contrast_two_level(req):
    # terms: [{"weight": w, "correct": [[0/1...] per seed, or one]}]; the same drawn seeds and
    # rows for every term.
    terms = []
    S = max(len(t["correct"]) for t in req["terms"])
    for t in req["terms"]:
        c = np.asarray(t["correct"], dtype=np.float64)
        if c.shape[0] == 1:
            c = np.repeat(c, S, axis=0)
        terms.append((float(t["weight"]), c))
    value = sum(w * c for w, c in terms)  # [S, N]
    N = value.shape[1]
    B = req["n_resamples"]
    rng = np.random.default_rng(req["seed"])
    dist = np.empty(B)
    for r in range(B):
        seeds = rng.integers(0, S, size=S)
        rows = rng.integers(0, N, size=N)
        dist[r] = np.mean(value[seeds][:, rows])
    alpha = (1 - req["confidence"]) / 2
    tol = 1e-9
    p = min(
        1.0,
        2 * min((1 + np.sum(dist <= tol)) / (B + 1), (1 + np.sum(dist >= -tol)) / (B + 1)),
    )
    return {
        "difference": float(np.mean(value)),
        "ci": [
            float(np.percentile(dist, 100 * alpha)),
            float(np.percentile(dist, 100 * (1 - alpha))),
        ],
        "pValue": float(p),
    }


TASKS = {
    "t_ppf": t_ppf,
    "seed_summary": seed_summary,
    "bootstrap_scipy": bootstrap_scipy,
    "bootstrap_two_level": bootstrap_two_level,
    "contrast_two_level": contrast_two_level,
}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(TASKS[request["task"]](request), sys.stdout)
