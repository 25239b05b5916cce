"""Assembly: manifest -> sources -> tokens -> compose, splits, mix, shards, card (`uvd dataset`)."""
