"""uvd: build UVDv1-style visual sentences (the LVM training set) and train on them."""

__version__ = "0.1.0"
