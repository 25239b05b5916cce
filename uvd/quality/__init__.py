"""Data quality checks that see what the model will train on (issue 19).

Modules, one job each (numpy only, except pipeline.py):
    fingerprint.py  DCT hash and 16x16 thumbnail of 256x256 images
    grouping.py     LSH bands, bounded bucket comparison, kept-image choice
    decontam.py     evaluation sets (image folders, prompt shards) as a fingerprint index
    learn.py        reconstruction PSNR, distinct codes, fixed-edge histograms
    sequence.py     frozen / blank frames and scene cuts inside a sentence
    verdict.py      per-sentence verdicts and failure rows from per-image facts
    config.py       the manifest's `quality:` block
    pipeline.py     Beam: QualityChecks and `apply`, called by uvd/assembly/dataset.py
    card.py         the card's "Data quality" section
    testset.py      the labelled near-duplicate set and cut clips the benchmark measures
"""
