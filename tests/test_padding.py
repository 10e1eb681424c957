"""The shared pad-to-a-multiple-of-32 helper every adapter uses for odd sizes."""

import torch

from models.padding import pad_to_multiple


def test_pads_bottom_right_only_and_keeps_the_original_corner():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    out = pad_to_multiple(x, 4)
    assert out.shape == (2, 3, 8, 8)
    assert torch.equal(out[..., :5, :7], x)
    assert torch.equal(out[..., 7, :7], x[..., 4, :])  # replicate: the last row repeats


def test_reflect_falls_back_to_replicate_when_the_pad_is_too_large():
    x = torch.rand(1, 1, 2, 2)
    assert torch.equal(pad_to_multiple(x, 32, "reflect"), pad_to_multiple(x, 32, "replicate"))
    y = torch.rand(1, 1, 30, 30)
    assert torch.equal(pad_to_multiple(y, 32, "reflect")[..., 30, :30], y[..., 28, :])


def test_five_dimensional_clips_and_no_op():
    clip = torch.rand(2, 3, 2, 20, 40)
    out = pad_to_multiple(clip, 32)
    assert out.shape == (2, 3, 2, 32, 64) and torch.equal(out[..., :20, :40], clip)
    x = torch.rand(1, 3, 64, 32)
    assert pad_to_multiple(x, 32) is x
