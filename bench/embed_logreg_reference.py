#!/usr/bin/python3
"""Reference for bench/embed_logreg.ts: scikit-learn's LogisticRegression (lbfgs, C given,
max_iter 5000) on the same embeddings. Prints {"accuracy", "seconds"} as JSON. Needs Debian's
python3-sklearn (with python3-numpy); bench/embed_logreg.ts fails, naming the package, without
it.

Usage: /usr/bin/python3 bench/embed_logreg_reference.py DIR COLS C
DIR holds train.f32, test.f32 (little-endian float32 rows), ytrain.u8, ytest.u8.
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

folder, cols, C = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
X_train = np.fromfile(os.path.join(folder, "train.f32"), dtype="<f4").reshape(-1, cols)
X_test = np.fromfile(os.path.join(folder, "test.f32"), dtype="<f4").reshape(-1, cols)
y_train = np.fromfile(os.path.join(folder, "ytrain.u8"), dtype=np.uint8)
y_test = np.fromfile(os.path.join(folder, "ytest.u8"), dtype=np.uint8)
start = time.perf_counter()
model = LogisticRegression(C=C, max_iter=5000).fit(X_train.astype(np.float64), y_train)
seconds = time.perf_counter() - start
accuracy = float((model.predict(X_test.astype(np.float64)) == y_test).mean())
json.dump({"accuracy": accuracy, "seconds": seconds}, sys.stdout)
