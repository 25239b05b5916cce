"""The slim LVM trainer. Imports torch, pyarrow and numpy only: no Beam, OpenCV or renderers."""
