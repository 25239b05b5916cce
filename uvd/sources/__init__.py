"""Source stages: one package per source, each with the same face (`Config`, `source_transform`, `run`)."""
