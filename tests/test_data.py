"""Data: the real readers on tiny files in the real formats, MD5 checks, offline download, loaders."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from edgeghost.data import datasets, get_spec, load_split
from edgeghost.data.loader import augment, make_loader, normalize, set_epoch
from edgeghost.data.synthetic import write_synthetic_cifar, write_synthetic_fashion_mnist
from edgeghost.errors import EdgeGhostError


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_idx_is_padded_and_replicated(tmp_path, compress):
    root = write_synthetic_fashion_mnist(tmp_path, train=30, test=20, compress=compress)
    split = load_split("fashion_mnist", "train", root)
    assert split.images.shape == (30, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.labels.dtype == np.int64 and len(split) == 30
    # 2-pixel zero border around the 28×28 image, the same grey value in every channel.
    assert not split.images[:, :2].any() and not split.images[:, -2:].any() and not split.images[:, :, :2].any()
    assert (split.images[..., 0] == split.images[..., 1]).all() and (split.images[..., 1] == split.images[..., 2]).all()
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    raw = (root / name).read_bytes()
    raw = gzip.decompress(raw) if compress else raw
    first = np.frombuffer(raw, np.uint8, count=28 * 28, offset=16).reshape(28, 28)
    np.testing.assert_array_equal(split.images[0, 2:30, 2:30, 0], first)
    assert load_split("fashion_mnist", "test", root).images.shape == (20, 32, 32, 3)


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_pickles_read_as_nhwc(tmp_path, name, classes):
    write_synthetic_cifar(tmp_path, name, train=25, test=10)
    split = load_split(name, "train", tmp_path, verify=False)
    assert split.images.shape == (25, 32, 32, 3) and split.spec.num_classes == classes
    folder, train_files, _, key = datasets.CIFAR_LAYOUT[name]
    with (tmp_path / folder / train_files[0]).open("rb") as f:
        batch = pickle.load(f, encoding="bytes")
    chw = np.asarray(batch[b"data"][0], np.uint8).reshape(3, 32, 32)
    np.testing.assert_array_equal(split.images[0], chw.transpose(1, 2, 0))  # CHW rows → HWC
    assert split.labels[0] == batch[key][0]
    assert len(load_split(name, "test", tmp_path, verify=False)) == 10


def test_md5_check_names_the_bad_file(tmp_path, monkeypatch):
    write_synthetic_cifar(tmp_path, train=50, test=10)
    root = tmp_path / "cifar-10-batches-py"
    # Make the official table describe these files, then damage one of them.
    table = {p.name: datasets.file_md5(p) for p in root.iterdir()}
    monkeypatch.setattr(datasets, "CIFAR_MD5", table)
    assert len(load_split("cifar10", "train", tmp_path)) == 50
    with (root / "data_batch_3").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(EdgeGhostError, match=r"data_batch_3 is corrupt: MD5"):
        load_split("cifar10", "train", tmp_path)
    assert len(load_split("cifar10", "test", tmp_path)) == 10  # the test split is still fine


def test_real_md5_table_rejects_files_that_are_not_the_official_ones(tmp_path):
    write_synthetic_cifar(tmp_path, train=10, test=10)
    with pytest.raises(EdgeGhostError, match="test_batch is corrupt.*--no-verify"):
        load_split("cifar10", "test", tmp_path)


def test_offline_download_fails_with_one_message_and_leaves_nothing(tmp_path, monkeypatch):
    # A proxy on a closed local port makes the real download fail at once, as it does without internet.
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(EdgeGhostError) as err:
        load_split("cifar10", "test", tmp_path)
    message = str(err.value)
    assert "download failed" in message and "cifar-10-python.tar.gz" in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert list(tmp_path.iterdir()) == []  # no partial archive, no temp folder
    monkeypatch.chdir(tmp_path)  # the default ./data folder is not left behind either
    with pytest.raises(EdgeGhostError, match="download failed"):
        load_split("cifar100", "test")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EdgeGhostError, match="put the python-pickle batches"):
        load_split("cifar10", "test", tmp_path, download=False)


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(EdgeGhostError, match="unknown dataset 'mnist'"):
        load_split("mnist", "train", tmp_path)
    with pytest.raises(EdgeGhostError, match="does not exist"):
        load_split("fashion_mnist", "train", tmp_path / "nowhere")
    with pytest.raises(EdgeGhostError, match="missing file"):
        load_split("fashion_mnist", "train", tmp_path)
    root = write_synthetic_fashion_mnist(tmp_path / "fm", train=10, test=10, compress=False)
    path = root / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(EdgeGhostError, match="truncated or corrupt"):
        load_split("fashion_mnist", "train", root)


def test_augment_is_a_padded_crop_and_flip():
    images = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(augment(images, generator=g, pad=0, hflip=False), images)
    out = augment(images, generator=g, pad=4, hflip=True)
    padded = torch.nn.functional.pad(images, (0, 0, 4, 4, 4, 4))
    for i in range(len(images)):
        windows = [padded[i, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        candidates = windows + [w.flip(1) for w in windows]
        assert any(torch.equal(out[i], c) for c in candidates)
    # Same seed, same batch: augmentation is reproducible (resume depends on it).
    a = augment(images, generator=torch.Generator().manual_seed(5))
    b = augment(images, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, images)


def test_normalize_uses_the_spec():
    spec = get_spec("cifar10")
    images = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    x = normalize(images, spec)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32
    expected = (images[1, 5, 7, 2].item() / 255 - spec.mean[2]) / spec.std[2]
    assert x[1, 2, 5, 7].item() == pytest.approx(expected, rel=1e-6)


def test_loader_order_depends_only_on_seed_and_epoch(tmp_path):
    split = load_split("fashion_mnist", "train", write_synthetic_fashion_mnist(tmp_path, train=40, test=4))
    def order(epoch):
        loader = make_loader(split, batch_size=8, train=True, seed=3)
        set_epoch(loader, epoch=epoch, seed=3)
        return torch.cat([y for _, y in loader])
    assert torch.equal(order(1), order(1)) and not torch.equal(order(0), order(1))
    assert sorted(order(0).tolist()) == sorted(split.labels.tolist())
