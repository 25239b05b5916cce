"""The LVM's VQGAN tokenizer (open-muse layout): images <-> 16x16 codes of 8192."""
