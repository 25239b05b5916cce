"""Hugging Face datasets as a uvd source (`uvd hf`): see pipeline.py for the flow.

reader.py    layouts (save_to_disk, Parquet, Arrow, cached hub id), shards, rows as dicts
mappings.py  built-in column mappings and the pure row-value decoders
pipeline.py  Config, the Beam stage (HFSource), source_transform, run
"""
