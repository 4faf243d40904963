"""Reference values for tests/image_barnes_hut_test.ts, from scikit-learn and NumPy.

Reads one JSON request on stdin and writes one JSON answer on stdout. Requests (by "task"):

  digits      {"folder", "n"}
      writes folder/X.f32: the first n rows of scikit-learn's bundled digits (8x8 images,
      64 features, values 0..16, no download), float32, row-major -> {"n", "d"}
  fit         {"folder", "n", "d", "seed", "perplexity", "learning_rate",
               "early_exaggeration"}
      scikit-learn's TSNE(method="barnes_hut", init="random", angle 0.5, 1000 iterations)
      on folder/X.f32; writes folder/sklearn.f64 (the map) -> {"kl", "n_iter", "seconds",
      "version", "trace": [[iteration, KL], ...]} (the KL its verbose log prints every 50
      iterations, against the exaggerated P during the first 250). Run it with
      OMP_NUM_THREADS=1: scikit-learn's OpenMP gradient is ~10x slower on busy cores.
  score       {"folder", "n", "d", "maps": [name, ...], "perplexity", "neighbors"}
      for each folder/<name>.f64 map: the exact KL divergence against P (computed here, in
      NumPy, with scikit-learn's semantics: squared Euclidean distances to the
      3*perplexity+1 nearest neighbours, per-row Gaussian bandwidth by bisection on the
      entropy, P = (C + C^T) / sum), and the mean fraction of each point's `neighbors`
      nearest neighbours in X that are among its `neighbors` nearest in the map
      -> {name: {"kl", "preservation", "trustworthiness"}}
  bh_gradient {"folder", "n", "maps": [name, ...], "cases": [[exaggeration, angle], ...]}
      scikit-learn's own Barnes-Hut KL and gradient (sklearn.manifold._t_sne.
      _kl_divergence_bh, float32 inside) for the sparse P in folder/P_rows.i32, P_cols.i32,
      P_vals.f64 (CSR, both triangles) times each exaggeration, at each map folder/<name>.f64
      -> {name: [{"kl", "grad": [...]} per case]}

Needs /usr/bin/python3 with Debian's python3-sklearn (and python3-numpy, python3-scipy).
"""

import contextlib
import io
import json
import re
import sys
import time

import numpy as np


def read(folder, name, dtype, shape=None):
    a = np.fromfile(f"{folder}/{name}", dtype=dtype)
    return a if shape is None else a.reshape(shape)


def digits(req):
    from sklearn.datasets import load_digits

    X = load_digits().data[: req["n"]].astype(np.float32)
    X.tofile(f"{req['folder']}/X.f32")
    return {"n": int(X.shape[0]), "d": int(X.shape[1])}


def fit(req):
    import sklearn
    from sklearn.manifold import TSNE

    folder, n, d = req["folder"], req["n"], req["d"]
    X = read(folder, "X.f32", "<f4", (n, d))
    tsne = TSNE(
        n_components=2,
        perplexity=req["perplexity"],
        early_exaggeration=req["early_exaggeration"],
        learning_rate=req["learning_rate"],
        init="random",
        method="barnes_hut",
        angle=0.5,
        random_state=req["seed"],
        verbose=2,
    )
    log = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        Y = tsne.fit_transform(X)
    seconds = time.perf_counter() - t0
    Y.astype(np.float64).tofile(f"{folder}/sklearn.f64")
    trace = re.findall(r"Iteration (\d+): error = ([0-9.eE+-]+)", log.getvalue())
    return {
        "kl": float(tsne.kl_divergence_),
        "trace": [[int(i), float(e)] for i, e in trace],
        "n_iter": int(tsne.n_iter_),
        "seconds": seconds,
        "version": sklearn.__version__,
    }


def sq_dist(A):
    s = (A * A).sum(1)
    D = s[:, None] + s[None, :] - 2 * A @ A.T
    np.maximum(D, 0, out=D)
    np.fill_diagonal(D, np.inf)
    return D


def joint_probabilities_nn(X, perplexity):
    """scikit-learn's _joint_probabilities_nn, vectorised over rows, in float64."""
    n = X.shape[0]
    k = min(n - 1, int(3.0 * perplexity + 1))
    D = sq_dist(X)
    nbr = np.argsort(D, axis=1)[:, :k]
    dist = np.take_along_axis(D, nbr, axis=1)
    target = np.log(perplexity)
    beta = np.ones(n)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    # Shifting each row by its smallest distance leaves the conditional P unchanged.
    shifted = dist - dist[:, :1]
    for _ in range(100):
        P = np.exp(-shifted * beta[:, None])
        s = P.sum(1)
        s[s == 0] = 1e-8
        P /= s[:, None]
        entropy = np.log(s) + beta * (shifted * P).sum(1)
        diff = entropy - target
        done = np.abs(diff) <= 1e-5
        if done.all():
            break
        up = (diff > 0) & ~done
        down = (diff <= 0) & ~done
        lo = np.where(up, beta, lo)
        hi = np.where(down, beta, hi)
        beta = np.where(
            up,
            np.where(np.isinf(hi), beta * 2, (beta + hi) / 2),
            np.where(down, np.where(np.isinf(lo), beta / 2, (beta + lo) / 2), beta),
        )
    C = np.zeros((n, n))
    np.put_along_axis(C, nbr, P, axis=1)
    J = C + C.T
    return J / max(J.sum(), np.finfo(np.double).eps), nbr


def exact_kl(P, Y):
    W = 1.0 / (1.0 + sq_dist(Y))  # the diagonal is inf, so W_ii = 0
    Q = W / W.sum()
    mask = P > 0
    return float((P[mask] * np.log(P[mask] / np.maximum(Q[mask], 1e-300))).sum())


def preservation(X, Y, k):
    nx = np.argsort(sq_dist(X), axis=1)[:, :k]
    ny = np.argsort(sq_dist(Y), axis=1)[:, :k]
    kept = [len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(nx, ny)]
    return float(np.mean(kept) / k)


def score(req):
    from sklearn.manifold import trustworthiness

    folder, n, d, k = req["folder"], req["n"], req["d"], req["neighbors"]
    X = read(folder, "X.f32", "<f4", (n, d)).astype(np.float64)
    P, _ = joint_probabilities_nn(X, req["perplexity"])
    out = {}
    for name in req["maps"]:
        Y = read(folder, f"{name}.f64", "<f8", (n, 2))
        out[name] = {
            "kl": exact_kl(P, Y),
            "preservation": preservation(X, Y, k),
            "trustworthiness": float(trustworthiness(X, Y, n_neighbors=k)),
        }
    return out


def bh_gradient(req):
    import scipy.sparse as sp
    from sklearn.manifold._t_sne import _kl_divergence_bh

    folder, n = req["folder"], req["n"]
    P = sp.csr_matrix(
        (
            read(folder, "P_vals.f64", "<f8"),
            read(folder, "P_cols.i32", "<i4"),
            read(folder, "P_rows.i32", "<i4"),
        ),
        shape=(n, n),
    )
    out = {}
    for name in req["maps"]:
        Y = read(folder, f"{name}.f64", "<f8")
        out[name] = []
        for exaggeration, angle in req["cases"]:
            kl, grad = _kl_divergence_bh(Y.copy(), P * exaggeration, 1, n, 2, angle=angle)
            out[name].append({"kl": float(kl), "grad": [float(g) for g in grad]})
    return out


TASKS = {"digits": digits, "fit": fit, "score": score, "bh_gradient": bh_gradient}

if __name__ == "__main__":
    request = json.load(sys.stdin)
    json.dump(TASKS[request["task"]](request), sys.stdout)
