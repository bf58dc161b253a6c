"""Joint transforms keep image and mask aligned; normalisation; in-memory dataset."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deal.data import InMemorySegmentation, eval_transforms, normalize, train_transforms
from deal.data.base import resize_pair
from deal.data.transforms import IMAGENET_MEAN, IMAGENET_STD, apply, denormalize

VOID = 11


def encoded_pair(h=64, w=96, block=16, seed=0):
    """A block mask of classes 0..10 and an image whose colour encodes the class,
    plus a horizontal ramp in blue so that a flip of one without the other shows."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 11, size=(h // block, w // block))
    mask = np.kron(blocks, np.ones((block, block), dtype=np.int64)).astype(np.uint8)
    img = np.zeros((3, h, w), dtype=np.uint8)
    img[0] = 20 * mask + 10
    img[1] = 250 - 20 * mask
    img[2] = (np.arange(w) * 255 // (w - 1))[None, :]
    return torch.from_numpy(img), torch.from_numpy(mask)


def decode(img):
    """Class from the image colour (the inverse of encoded_pair)."""
    return ((img[0].float() - 10) / 20).round().long()


def interior(mask, r=2):
    """Pixels whose (2r+1)^2 neighbourhood holds one label: away from any edge,
    including the crop's border (what lies beyond it is unknown)."""
    m = mask.long()
    h, w = m.shape
    pad = torch.nn.functional.pad(m[None, None].float(), (r, r, r, r), value=-1.0)[0, 0]
    same = torch.ones_like(m, dtype=torch.bool)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            same &= pad[dy : dy + h, dx : dx + w].long() == m
    return same


def edge_violations(img, mask):
    """Share of edge pixels (a different label in the 3x3 neighbourhood) where
    the image colour is nearer another neighbouring label's colour than the
    mask's own label. The bilinear sample is dominated by the source pixel under
    its centre, so a mask that takes that pixel (nearest-exact) agrees except at
    block corners; a mask shifted by a fraction of a pixel (plain nearest) does not."""
    red = img[0].float()
    m = mask.long()
    h, w = m.shape
    pad = torch.nn.functional.pad(m[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0].long()
    own = (red - (20 * m + 10)).abs()
    bad = torch.zeros_like(m, dtype=torch.bool)
    edge = torch.zeros_like(bad)
    for dy in range(3):
        for dx in range(3):
            other = pad[dy : dy + h, dx : dx + w]
            diff = (other != m) & (other != VOID) & (m != VOID)
            edge |= diff
            bad |= diff & ((red - (20 * other + 10)).abs() < own - 1)
    return float(bad.sum()) / max(float(edge.sum()), 1.0)


def assert_aligned(img, mask):
    inner = interior(mask)
    labeled = inner & (mask != VOID)
    assert labeled.float().mean() > 0.1
    # the mask drawn from the image agrees with the mask, everywhere away from edges
    assert torch.equal(decode(img)[labeled], mask[labeled].long())
    assert (img[1].long() + 20 * mask.long() - 250)[labeled].abs().max() <= 2
    # the source has no void: void only comes from padding, where the image is 0
    pad = mask == VOID
    assert (img[:, pad] == 0).all()
    return bool(pad.any())


def test_train_transforms_keep_alignment():
    img, mask = encoded_pair()
    t = train_transforms((56, 80), scale=(0.7, 1.3), void_index=VOID, hflip=True)
    padded = flipped = 0
    violations = []
    for seed in range(40):
        torch.manual_seed(seed)
        out_i, out_m = apply(t, img, mask)
        assert out_i.shape == (3, 56, 80) and out_m.shape == (56, 80)
        assert out_i.dtype == torch.uint8 and out_m.dtype == torch.uint8
        assert type(out_i) is torch.Tensor and type(out_m) is torch.Tensor
        padded += assert_aligned(out_i, out_m)
        violations.append(edge_violations(out_i, out_m))
        # blue ramp rises left to right unless flipped
        ramp = out_i[2].float().mean(0)
        flipped += bool(ramp[-8:].mean() < ramp[:8].mean())
    assert 5 <= flipped <= 35, "flip never or always applied"
    assert np.mean(violations) < 0.08, violations
    assert padded >= 3, "small scales should need void padding"


def test_crop_pads_with_void_when_image_is_smaller():
    img, mask = encoded_pair(h=16, w=16, block=4)
    torch.manual_seed(0)
    out_i, out_m = apply(train_transforms((32, 32), scale=(1.0, 1.0), void_index=VOID, hflip=False), img, mask)
    assert out_m.shape == (32, 32)
    assert int((out_m != VOID).sum()) == 16 * 16
    assert (out_i[:, out_m == VOID] == 0).all()


def test_eval_transforms_and_resize_pair_align():
    img, mask = encoded_pair()
    out_i, out_m = apply(eval_transforms((30, 40)), img, mask)
    assert out_i.shape == (3, 30, 40)
    assert_aligned(out_i, out_m)
    same_i, same_m = apply(eval_transforms(None), img, mask)
    assert torch.equal(same_i, img) and torch.equal(same_m, mask)
    r_i, r_m = resize_pair(img, mask, (30, 40))
    assert torch.equal(r_i, out_i) and torch.equal(r_m, out_m)


def test_nearest_mask_follows_bilinear_image_when_downscaling_by_odd_factors():
    # a 1-px wide structure must land where the image shows it
    img, mask = encoded_pair(h=60, w=80, block=20)
    for size in [(45, 60), (37, 49), (71, 95), (24, 32)]:
        assert_aligned(*resize_pair(img, mask, size))
    # at block edges, too: the mask label is the one the image shows
    img, mask = encoded_pair(h=60, w=80, block=10)
    for size in [(37, 49), (71, 95), (83, 125)]:
        assert edge_violations(*resize_pair(img, mask, size)) < 0.08, size


def test_normalize_and_denormalize():
    img, _ = encoded_pair()
    x = normalize(img)
    assert x.dtype == torch.float32 and x.shape == img.shape
    expect = (img[0].float() / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert torch.allclose(x[0], expect, atol=1e-6)
    batch = normalize(img[None].repeat(2, 1, 1, 1))
    assert batch.shape == (2, 3, 64, 96) and torch.allclose(batch[1], x)
    assert torch.equal(denormalize(x), img)


def test_in_memory_dataset_and_loader():
    pairs = [encoded_pair(seed=s) for s in range(5)]
    images = torch.stack([p[0] for p in pairs])
    masks = torch.stack([p[1] for p in pairs])
    ds = InMemorySegmentation(images, masks, train_transforms((32, 32), void_index=VOID))
    assert len(ds) == 5
    x, y = ds[0]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (32, 32)
    xb, yb = next(iter(DataLoader(ds, batch_size=4, shuffle=False, num_workers=0)))
    assert xb.shape == (4, 3, 32, 32) and yb.shape == (4, 32, 32)
    plain = InMemorySegmentation(images, masks, return_index=True)
    x, y, i = plain[3]
    assert i == 3 and torch.equal(y, masks[3].long()) and torch.allclose(x, normalize(images[3]))
    with pytest.raises(ValueError):
        InMemorySegmentation(images.float(), masks)
    with pytest.raises(ValueError):
        InMemorySegmentation(images, masks[:, :10])
