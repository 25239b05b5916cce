"""MMPose model configs (mmengine config files) for uvd.pipelines.pose_model.CONFIGS; a package so wheels ship them."""
