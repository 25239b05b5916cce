"""The video source stage."""
