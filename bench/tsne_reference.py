"""Reference side of bench/tsne.ts: scikit-learn's Barnes-Hut TSNE on the same points.

Usage: tsne_reference.py POINTS.f32 N D PERPLEXITY N_ITER LEARNING_RATE SEED THREADS

Reads N x D float32 points (row-major, little-endian), fits sklearn.manifold.TSNE with the
given settings (Barnes-Hut, angle 0.5, init "random", early exaggeration 12) on THREADS
threads, writes the map next to the input (POINTS.f32.sklearn_map.f32) and prints one JSON
line: {"seconds", "kl", "n_iter", "sklearn"}. Only the fit is timed.
"""
import json
import os
import sys

threads = sys.argv[8] if len(sys.argv) > 8 else "2"
# Thread counts must be set before numpy / OpenMP start.
os.environ["OMP_NUM_THREADS"] = threads
os.environ["OPENBLAS_NUM_THREADS"] = threads
os.environ["MKL_NUM_THREADS"] = threads

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402


def main() -> None:
    path, n, d, perplexity, n_iter, learning_rate, seed = sys.argv[1:8]
    n, d, n_iter, seed = int(n), int(d), int(n_iter), int(seed)
    points = np.fromfile(path, dtype="<f4").reshape(n, d)
    tsne = TSNE(
        n_components=2,
        perplexity=float(perplexity),
        early_exaggeration=12.0,
        learning_rate=float(learning_rate),
        n_iter=n_iter,
        n_iter_without_progress=300,
        min_grad_norm=1e-7,
        metric="euclidean",
        init="random",
        method="barnes_hut",
        angle=0.5,
        random_state=seed,
        n_jobs=int(threads),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        embedding = tsne.fit_transform(points)
        seconds = time.perf_counter() - start
    embedding.astype("<f4").tofile(path + ".sklearn_map.f32")
    print(json.dumps({
        "seconds": seconds,
        "kl": float(tsne.kl_divergence_),
        "n_iter": int(tsne.n_iter_),
        "sklearn": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
