"""The imagenet source stage."""
