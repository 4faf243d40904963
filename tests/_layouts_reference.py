"""Reference values for tests/image_layouts_test.ts, from NumPy, SciPy and scikit-learn.

Reads one JSON request on stdin and writes one JSON answer on stdout. Every request names a
float32 row-major matrix folder/X.f32 of shape [n, d] (the points: in DeepInsight the
features). Requests (by "task"):

  pca        {"folder", "n", "d"}
      the first two principal component scores of the rows, from NumPy's SVD of the centred
      matrix (U * S), each column's sign flipped so that its largest-magnitude entry is
      positive -> {"scores": [...] row-major [n, 2]}
  kpca       {"folder", "n", "d", "gamma"}
      scikit-learn's KernelPCA(n_components=2, kernel="rbf", gamma=gamma or None (then
      1 / d)).fit_transform, in float64, with the same sign rule
      -> {"scores": [...], "eigenvalues": [...], "gamma": gamma used}
  cosine_p   {"folder", "n", "d", "perplexity", "k"}
      the t-SNE input affinities from cosine distances with scikit-learn's TSNE semantics
      (1.1 and later square the distances of every metric): exact P =
      squareform(_joint_probabilities(pairwise_distances(X, "cosine") ** 2, perplexity)),
      and the Barnes-Hut P = _joint_probabilities_nn over the k nearest neighbours
      (NearestNeighbors(metric="cosine"), distances squared) as a dense matrix
      -> {"exact": [...] row-major [n, n], "nn": [...] row-major [n, n], "sklearn": version}

Needs /usr/bin/python3 with Debian's python3-sklearn (and python3-numpy, python3-scipy).
"""

import json
import sys

import numpy as np


def read_points(req):
    n, d = req["n"], req["d"]
    return np.fromfile(f"{req['folder']}/X.f32", dtype="<f4").reshape(n, d).astype(np.float64)


def sign_normalise(scores):
    scores = np.array(scores, dtype=np.float64)
    for k in range(scores.shape[1]):
        col = scores[:, k]
        if col[np.argmax(np.abs(col))] < 0:
            scores[:, k] = -col
    return scores


def pca(req):
    X = read_points(req)
    Xc = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    scores = sign_normalise(U[:, :2] * S[:2])
    return {"scores": scores.ravel().tolist()}


def kpca(req):
    from sklearn.decomposition import KernelPCA

    X = read_points(req)
    gamma = req.get("gamma")
    model = KernelPCA(n_components=2, kernel="rbf", gamma=gamma)
    scores = sign_normalise(model.fit_transform(X))
    used = gamma if gamma is not None else 1.0 / X.shape[1]
    return {
        "scores": scores.ravel().tolist(),
        "eigenvalues": model.eigenvalues_.tolist(),
        "gamma": used,
    }


def cosine_p(req):
    import sklearn
    from scipy.spatial.distance import squareform
    from sklearn.manifold._t_sne import _joint_probabilities, _joint_probabilities_nn
    from sklearn.metrics import pairwise_distances
    from sklearn.neighbors import NearestNeighbors

    X = read_points(req)
    perplexity, k = req["perplexity"], req["k"]
    D = pairwise_distances(X, metric="cosine") ** 2
    exact = squareform(_joint_probabilities(D, perplexity, 0))
    knn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(X)
    graph = knn.kneighbors_graph(mode="distance")
    graph.data **= 2
    nn = _joint_probabilities_nn(graph, perplexity, 0).toarray()
    return {
        "exact": exact.ravel().tolist(),
        "nn": nn.ravel().tolist(),
        "sklearn": sklearn.__version__,
    }


TASKS = {"pca": pca, "kpca": kpca, "cosine_p": cosine_p}


def main():
    request = json.load(sys.stdin)
    json.dump(TASKS[request["task"]](request), sys.stdout)


if __name__ == "__main__":
    main()
