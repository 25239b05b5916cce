"""The LAION ingest stage, one module per concern (img2dataset style):

    reader.py      LAION metadata Parquet -> canonical row dicts (Beam Parquet IO, optional columns)
    filters.py     config rules: min side, max aspect ratio, punsafe, pwatermark -> "filtered"
    downloader.py  one pooled requests.Session per worker: timeouts, retries, caps, opt-out, file:
    record.py      one row -> fetch -> decode/resize (uvd.transforms.image) -> image + sentence rows
    pipeline.py    Config, source_transform(config) for manifests, `uvd laion` run(argv)
"""
