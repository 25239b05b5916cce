# RTMPose-t, COCO-17, 256x192 input: inference only (no training schedule, no dataset paths).
# The architecture of MMPose's rtmpose-t_8xb256-420e_coco-256x192 (CSPNeXt-tiny + RTMCC head, SimCC
# codec), so its released checkpoint loads here by `--checkpoint PATH_OR_URL`; without one the
# weights are random (uvd's plumbing tests). MMPose's own CSPNeXt is used, so mmdet's detector
# models need not import. Inputs are BGR (the preprocessor swaps to RGB), as in every MMPose config.
default_scope = "mmpose"

input_size = (192, 256)  # (w, h)
codec = dict(
    type="SimCCLabel", input_size=input_size, sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False, use_dark=False
)

model = dict(
    type="TopdownPoseEstimator",
    data_preprocessor=dict(
        type="PoseDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True
    ),
    backbone=dict(
        type="CSPNeXt",
        arch="P5",
        expand_ratio=0.5,
        deepen_factor=0.167,
        widen_factor=0.375,
        out_indices=(4,),
        channel_attention=True,
        norm_cfg=dict(type="BN"),
        act_cfg=dict(type="SiLU"),
    ),
    head=dict(
        type="RTMCCHead",
        in_channels=384,
        out_channels=17,
        input_size=input_size,
        in_featuremap_size=(input_size[0] // 32, input_size[1] // 32),
        simcc_split_ratio=codec["simcc_split_ratio"],
        final_layer_kernel_size=7,
        gau_cfg=dict(
            hidden_dims=256,
            s=128,
            expansion_factor=2,
            dropout_rate=0.0,
            drop_path=0.0,
            act_fn="SiLU",
            use_rel_bias=False,
            pos_enc=False,
        ),
        loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=10.0, label_softmax=True),
        decoder=codec,
    ),
    test_cfg=dict(flip_test=False),
)

# Images arrive as arrays ("img" already set), so LoadImage only records their shapes.
test_pipeline = [
    dict(type="LoadImage"),
    dict(type="GetBBoxCenterScale", padding=1.25),
    dict(type="TopdownAffine", input_size=input_size),
    dict(type="PackPoseInputs"),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
