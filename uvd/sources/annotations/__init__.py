"""Labelled datasets as images: adapters -> annotation records -> rendered images -> sentences.

Flow: an adapter (coco.py, labelmaps.py, pairs.py, synthetic.py, video.py) lists light work items
and turns each into an annotation record (records.py); render.py gives the record's image and each
annotation exactly the same resize/crop to 256 and draws it (uvd/transforms/); sentences.py groups
rendered pairs into 16-image sentences; pipeline.py wires it into Beam.
"""
