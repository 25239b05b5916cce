from uvd.transforms.detection import BOX_PALETTE, default_thickness, render_boxes


def test_outline_colour_position_and_width_at_256():
    canvas = render_boxes([[40, 60, 120, 200]], [5], 256, 256)
    color = BOX_PALETTE[5].tolist()
    assert default_thickness(256, 256) == 3
    for y, x in [(60, 80), (62, 80), (199, 80), (197, 80), (100, 40), (100, 42), (100, 119), (100, 117)]:
        assert canvas[y, x].tolist() == color, (y, x)
    for y, x in [(63, 80), (196, 80), (100, 43), (100, 116), (59, 80), (200, 80), (100, 39), (100, 120)]:
        assert canvas[y, x].tolist() == [0, 0, 0], (y, x)
    colours = {tuple(c) for c in canvas.reshape(-1, 3)}
    assert colours == {(0, 0, 0), tuple(color)}


def test_colour_per_class_and_clipping_at_the_border():
    canvas = render_boxes([[-20, 10, 30, 40], [50, 50, 60, 60]], [0, 1], 64, 64)
    assert canvas[20, 0].tolist() == [0, 0, 0]  # left edge is outside: not drawn
    assert canvas[10, 0].tolist() == BOX_PALETTE[0].tolist()  # top edge clipped, still drawn
    assert canvas[50, 55].tolist() == BOX_PALETTE[1].tolist()


def test_degenerate_boxes_draw_nothing():
    assert not render_boxes([[10, 10, 10, 20], [5, 9, 20, 3]], [0, 0], 32, 32).any()


def test_box_palette_is_fixed_and_bright():
    from uvd.transforms.segmentation import golden_palette

    assert (golden_palette() == BOX_PALETTE).all()
    assert (BOX_PALETTE.max(axis=1) == 255).all()  # no dark outline colours
    assert BOX_PALETTE[0].tolist() == [255, 0, 0]
    assert len({tuple(c) for c in BOX_PALETTE[:80]}) == 80  # COCO's 80 classes all differ
