"""MMPose model configs (mmengine config files) for uvd.sources.pose.model.CONFIGS; a package so wheels ship them."""
