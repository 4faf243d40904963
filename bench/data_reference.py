"""Reference for bench/data.ts and tests/data_imdb_shared_test.ts: reads the labelled IMDB
reviews from an aclImdb .tar.gz with Python's own tarfile + gzip, decodes them as UTF-8,
and prints one JSON line: the number of reviews, a SHA-256 over the records in canonical
order, the seconds taken and the peak resident memory.

Usage: /usr/bin/python3 bench/data_reference.py ARCHIVE
"""
import hashlib
import json
import re
import sys
import tarfile
import time
from _memory import peak_rss_mb  # bench/_memory.py

REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")


def main(path):
    start = time.perf_counter()
    records = []
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            if not member.isfile():
                continue
            match = REVIEW.search(member.name)
            if not match:
                continue
            data = archive.extractfile(member).read()
            text = data.decode("utf-8")  # strict: raises on invalid UTF-8
            split, folder, review_id, rating = match.groups()
            records.append((split == "test", folder == "pos", int(review_id), split, folder,
                            int(rating), text))
    records.sort(key=lambda r: r[:3])
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for _, _, review_id, split, folder, rating, text in records:
        digest.update(f"{split}/{folder}/{review_id}/{rating}\n".encode())
        digest.update(text.encode("utf-8"))
    peak_mb = peak_rss_mb()
    print(json.dumps({"count": len(records), "sha256": digest.hexdigest(),
                      "seconds": seconds, "peak_rss_mb": peak_mb}))


if __name__ == "__main__":
    main(sys.argv[1])
