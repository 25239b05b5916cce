"""Pure numpy image transforms and annotation renderers (no Beam): numpy in, numpy out."""
