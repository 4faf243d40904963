"""Reference values for tests/eval_tfidf_test.ts, from scikit-learn's TfidfVectorizer and
LogisticRegression.

Reads one JSON request on stdin and writes one JSON answer on stdout. Document-frequency
bounds arrive as {"int": n} or {"float": p}, as scikit-learn tells counts from proportions by
type. Requests (by "task"):

  tfidf     {"fit": [texts], "transform": [texts], "options": {...}}
            -> terms (column order), idf, the transformed rows as CSR (indices sorted), and
               "cut": the corpus totals of the kept terms at ranks max_features - 1 and
               max_features (without the limit), to see whether the limit cuts through a tie
  logistic  {"train": [texts], "labels": [0/1], "validation": [texts],
             "validation_labels": [0/1], "options": {...}, "l2": [..]}
            -> per l2: newton-cg at tol 1e-8 ("tight": the largest gradient component about
               1e-9 of its value at zero; scikit-learn 1.2's lbfgs stops near 1e-5 of it
               even at tol 1e-10, on its relative loss change, and newton-cg at tol 1e-10
               runs out of iterations) and lbfgs at its defaults ("default"), each with coef,
               intercept, P(1) of the validation texts, validation accuracy

Options: lowercase, ngram_range, min_df, max_df, max_features, sublinear_tf.

Needs /usr/bin/python3 with Debian's python3-sklearn.
"""

import json
import sys

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def bound(value):
    return int(value["int"]) if "int" in value else float(value["float"])


def vectorizer(options):
    return TfidfVectorizer(
        lowercase=options["lowercase"],
        ngram_range=tuple(options["ngram_range"]),
        min_df=bound(options["min_df"]),
        max_df=bound(options["max_df"]),
        max_features=options["max_features"],
        sublinear_tf=options["sublinear_tf"],
    )


def tfidf(req):
    options = req["options"]
    v = vectorizer(options).fit(req["fit"])
    X = v.transform(req["transform"]).tocsr()
    X.sort_indices()
    terms = v.get_feature_names_out().tolist()
    cut = None
    k = options["max_features"]
    if k is not None:
        # Corpus totals (raw counts) of the terms within the df bounds, before the limit.
        counts = CountVectorizer(
            lowercase=options["lowercase"],
            ngram_range=tuple(options["ngram_range"]),
            min_df=bound(options["min_df"]),
            max_df=bound(options["max_df"]),
        ).fit_transform(req["fit"])
        totals = np.sort(np.asarray(counts.sum(axis=0)).ravel())[::-1]
        if len(totals) > k:
            cut = [int(totals[k - 1]), int(totals[k])]
    return {
        "terms": terms,
        "idf": v.idf_.tolist(),
        "indptr": X.indptr.tolist(),
        "indices": X.indices.tolist(),
        "data": X.data.tolist(),
        "shape": list(X.shape),
        "cut": cut,
    }


def logistic(req):
    v = vectorizer(req["options"]).fit(req["train"])
    X = v.transform(req["train"])
    Xv = v.transform(req["validation"])
    y = np.asarray(req["labels"])
    yv = np.asarray(req["validation_labels"])
    out = []
    for l2 in req["l2"]:
        fits = {}
        for name, solver, tol in (("tight", "newton-cg", 1e-8), ("default", "lbfgs", 1e-4)):
            m = LogisticRegression(C=1 / l2, solver=solver, tol=tol, max_iter=1000).fit(X, y)
            p = m.predict_proba(Xv)[:, 1]
            fits[name] = {
                "coef": m.coef_[0].tolist(),
                "intercept": float(m.intercept_[0]),
                "proba": p.tolist(),
                "accuracy": float(((p > 0.5).astype(int) == yv).mean()),
            }
        out.append(fits)
    return {"terms": v.get_feature_names_out().tolist(), "fits": out}


if __name__ == "__main__":
    request = json.load(sys.stdin)
    task = {"tfidf": tfidf, "logistic": logistic}[request["task"]]
    json.dump(task(request), sys.stdout)
