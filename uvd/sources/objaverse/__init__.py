"""The objaverse source stage."""
