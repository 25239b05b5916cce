"""Beam pipelines: one module (or folder) per source stage, plus tokenize, shards and dataset."""
