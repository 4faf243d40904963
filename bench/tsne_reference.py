"""Reference side of bench/tsne.ts: scikit-learn's Barnes-Hut TSNE on the same points.

Usage: tsne_reference.py POINTS.f32 N D PERPLEXITY N_ITER LEARNING_RATE SEED THREADS
       tsne_reference.py --layouts POINTS.f32 N D SEED THREADS

Reads N x D float32 points (row-major, little-endian), fits sklearn.manifold.TSNE with the
given settings (Barnes-Hut, angle 0.5, init "random", early exaggeration 12) on THREADS
threads, writes the map next to the input (POINTS.f32.sklearn_map.f32) and prints one JSON
line: {"seconds", "kl", "n_iter", "sklearn"}. Only the fit is timed.

With --layouts it times the other feature maps' fit_transform on the same points instead:
scikit-learn's PCA(n_components=2) and KernelPCA(n_components=2, kernel="rbf") (gamma
1 / D), and umap-learn's UMAP(n_components=2) (defaults: 15 neighbours, min_dist 0.1) when
it can be imported; prints one JSON line {"pca_seconds", "kpca_seconds", "umap_seconds"
(absent when umap-learn is missing), "umap": "available" or why not, "sklearn"}.
"""
import json
import os
import sys

if len(sys.argv) > 1 and sys.argv[1] == "--layouts":
    threads = sys.argv[6] if len(sys.argv) > 6 else "2"
else:
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


def layouts() -> None:
    from sklearn.decomposition import PCA, KernelPCA

    path, n, d, seed = sys.argv[2:6]
    n, d, seed = int(n), int(d), int(seed)
    points = np.fromfile(path, dtype="<f4").reshape(n, d)
    out = {"sklearn": sklearn.__version__}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        PCA(n_components=2, random_state=seed).fit_transform(points)
        out["pca_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        KernelPCA(n_components=2, kernel="rbf", random_state=seed).fit_transform(points)
        out["kpca_seconds"] = time.perf_counter() - start
        try:
            import umap  # Debian: python3-umap-learn (not always packaged)
        except ImportError as e:
            out["umap"] = f"unavailable: umap-learn cannot be imported ({e})"
        else:
            start = time.perf_counter()
            umap.UMAP(n_components=2, random_state=seed).fit_transform(points)
            out["umap_seconds"] = time.perf_counter() - start
            out["umap"] = "available"
    print(json.dumps(out))


def main() -> None:
    if sys.argv[1] == "--layouts":
        layouts()
        return
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
