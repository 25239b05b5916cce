"""The pose source stage."""
