"""The LAION ingest stage, one module per concern (img2dataset style):

reader.py      LAION metadata Parquet -> row-range chunks -> canonical row dicts (+ row position)
filters.py     config rules: min side, max aspect ratio, punsafe, pwatermark -> "filtered"
guard.py       public destinations only (SSRF): checked after DNS on every connection and hop
downloader.py  one pooled requests.Session per worker: one deadline, retries, caps, opt-outs
scheduler.py   rows in flight on a thread pool, streamed as they complete, per-host politeness
record.py      one row -> fetch -> decode/resize (uvd.transforms.image) -> image + sentence rows
pipeline.py    Config, source_transform(config) for manifests, `uvd laion` run(argv)
"""
