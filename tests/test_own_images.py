"""Your own images end to end: a folder of PNGs → train → export --int8 → bench → firmware, at any input shape.

The folder is generated (1-channel 40×40 PNGs in three class folders, written with PIL like a camera dump) and
every stage runs for real: the training loop, onnx2tf + the TFLite converter, LiteRT, the TFLite-Micro Python
interpreter, the host firmware and the Cortex-M4 firmware under QEMU.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeghost.cli import main
from edgeghost.data import Preprocess, load_split, open_dataset, split_for_checkpoint
from edgeghost.data.folder import stratified_split
from edgeghost.data.synthetic import write_synthetic_folder
from edgeghost.errors import EdgeGhostError
from edgeghost.training.checkpoint import load_checkpoint

CLASSES = ("circle", "cross", "square")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_folder(tmp_path_factory.mktemp("cam"), classes=CLASSES, train=96, size=40, channels=1)


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cam"
    rc = main(["train", "--model", "ghostnetv3_small", "--width", "0.25", "--dataset", "folder", "--data-dir",
               str(folder), "--img-size", "40", "--in-chans", "1", "--epochs", "1", "--batch-size", "32",
               "--lr", "0.05", "--warmup", "0", "--threads", "1", "--out", str(out), "--no-progress"])
    assert rc == 0
    return out / "best.pt"


def test_folder_split_is_stratified_deterministic_and_classes_come_from_folders(folder: Path) -> None:
    train, val = open_dataset("folder", folder, img_size=40, in_chans=1)
    again_train, again_val = open_dataset("folder", folder, img_size=40, in_chans=1)
    assert train.spec.classes == CLASSES
    assert len(train) == 87 and len(val) == 9  # 32 per class, round(32 × 0.1) = 3 held out per class
    np.testing.assert_array_equal(val.labels, again_val.labels)
    assert [p.name for p in val.images.files] == [p.name for p in again_val.images.files]
    assert set(p for p in train.images.files).isdisjoint(val.images.files)
    assert sorted(np.bincount(val.labels).tolist()) == [len(val) // 3] * 3  # every class held out equally
    assert train.images.shape == (len(train), 40, 40, 1) and train.array([0, 1]).dtype == np.uint8
    # mean/std are measured on the training split, not assumed
    pixels = train.array() / 255.0
    assert train.preprocess.mean[0] == pytest.approx(pixels.mean(), abs=1e-3)
    assert train.preprocess.std[0] == pytest.approx(pixels.std(), abs=1e-3)
    # a different seed gives a different split
    tr, va = stratified_split(train.labels, 0.2, 0), stratified_split(train.labels, 0.2, 1)
    assert not np.array_equal(tr[1], va[1])


def test_resize_rule_is_shorter_side_then_centre_crop(tmp_path: Path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "b").mkdir(parents=True)
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 255  # a white centre band, black sides that the centre crop must drop
    Image.fromarray(wide).save(tmp_path / "train" / "a" / "0.png")
    Image.fromarray(wide).save(tmp_path / "train" / "b" / "0.png")
    Image.fromarray(wide).save(tmp_path / "train" / "b" / "1.png")
    train, _ = open_dataset("folder", tmp_path, img_size=10, in_chans=3)
    img = train.array()[0]
    assert img.shape == (10, 10, 3)
    assert img.min() > 200  # 20×40 → 10×20 → centre 10×10 is all band
    grey, _ = open_dataset("folder", tmp_path, img_size=10, in_chans=1)
    assert grey.array()[0].shape == (10, 10, 1)


def test_bad_folders_are_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def fails(args: list[str], needle: str) -> None:
        out = tmp_path / "out"
        rc = main(["train", "--model", "ghostnetv3_small", "--width", "0.25", "--epochs", "1", "--threads", "1",
                   "--out", str(out), "--no-progress", *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and needle in err and "Traceback" not in err and len(err.splitlines()) == 1, err
        assert not out.exists()

    fails(["--dataset", "folder", "--data-dir", str(tmp_path / "missing")], "does not exist")
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    fails(["--dataset", "folder", "--data-dir", str(empty)], "no class folders")
    root = write_synthetic_folder(tmp_path / "ok", train=9, size=12, channels=1)
    (root / "train" / "nothing").mkdir()
    fails(["--dataset", "folder", "--data-dir", str(root)], "has no images")
    shutil.rmtree(root / "train" / "nothing")
    bad = root / "train" / "circle" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    fails(["--dataset", "folder", "--data-dir", str(root)], str(bad))
    bad.unlink()
    write_synthetic_folder(tmp_path / "ok", classes=("circle", "cross", "triangle"), train=0, val=6, size=12)
    fails(["--dataset", "folder", "--data-dir", str(root)], "different classes")
    shutil.rmtree(root / "val")
    fails(["--dataset", "folder", "--data-dir", str(root), "--img-size", "4"], "--img-size must be >= 8")
    fails(["--dataset", "folder", "--data-dir", str(root), "--in-chans", "2"], "--in-chans must be 1")


def test_skip_corrupt_counts_and_skips(tmp_path: Path) -> None:
    root = write_synthetic_folder(tmp_path, train=12, size=12, channels=1)
    (root / "train" / "cross" / "zz.png").write_bytes(b"garbage")
    with pytest.raises(EdgeGhostError, match="zz.png"):
        open_dataset("folder", root, img_size=12, in_chans=1)
    train, val = open_dataset("folder", root, img_size=12, in_chans=1, skip_corrupt=True)
    assert len(train) + len(val) == 12


def test_fashion_mnist_natively_one_channel_and_resized() -> None:
    pytest.importorskip("PIL")
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    one = load_split("fashion_mnist", "test", in_chans=1).subset(8)
    three = load_split("fashion_mnist", "test").subset(8)
    assert one.images.shape == (8, 32, 32, 1) and three.images.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(one.images[..., 0], three.images[..., 1])  # padding + replication documented
    assert one.preprocess.resize == "pad" and not one.images[:, :2].any()
    big = load_split("fashion_mnist", "test", img_size=48, in_chans=1).subset(4)
    assert big.images.shape == (4, 48, 48, 1) and big.preprocess.resize == "pad"


def test_checkpoint_carries_the_preprocessing_and_classes(trained: Path, folder: Path) -> None:
    ckpt = load_checkpoint(trained)
    pp = Preprocess.from_checkpoint(ckpt)
    assert (pp.img_size, pp.in_chans, pp.resize) == (40, 1, "shorter-side-crop")
    assert ckpt["classes"] == list(CLASSES) and ckpt["in_chans"] == 1
    _, val = open_dataset("folder", folder, img_size=40, in_chans=1)
    again = split_for_checkpoint(ckpt, "test")
    np.testing.assert_array_equal(again.array(), val.array())  # eval sees exactly the held-out images
    assert again.preprocess == pp


@pytest.mark.slow
def test_folder_to_int8_export_bench_and_firmware(trained: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export"
    assert main(["export", "--checkpoint", str(trained), "--int8", "--calib-samples", "32", "--eval-samples", "16",
                 "--out", str(export), "--quiet"]) == 0
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["input"]["shape"] == [1, 40, 40, 1]
    assert manifest["input"]["model_int8.tflite"]["shape"] == [1, 40, 40, 1]
    assert manifest["labels"] == list(CLASSES)
    settings = (export / "tflm" / "model_settings.h").read_text()
    assert "40, 40, 1" in settings and all(c in settings for c in CLASSES)

    for device in ("host", "tflm"):
        out = tmp_path / f"bench-{device}"
        assert main(["bench", "--device", device, "--exports", str(export), "--eval-samples", "8",
                     "--out", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()

    tflm_dir = os.environ.get("TFLM_DIR") or str(Path(__file__).resolve().parents[2] / "shared/third_party/tflm")
    for target in ("host", "cortex-m4"):
        if target == "cortex-m4" and not shutil.which("qemu-system-arm"):
            pytest.skip("qemu-system-arm is not installed")
        rc = main(["firmware", "--export", str(export), "--target", target, "--out", str(tmp_path / f"fw-{target}"),
                   "--run", "--num-images", "2", "--tflm-dir", tflm_dir])
        out = capsys.readouterr().out
        assert rc == 0 and "identical" in out, out


@pytest.mark.slow
def test_three_channel_64px_exports(tmp_path: Path) -> None:
    root = write_synthetic_folder(tmp_path / "rgb", train=30, size=72, channels=3, suffix=".jpg")
    run = tmp_path / "run"
    assert main(["train", "--model", "ghostnetv3_small", "--width", "0.25", "--dataset", "folder", "--data-dir",
                 str(root), "--img-size", "64", "--in-chans", "3", "--epochs", "1", "--batch-size", "16",
                 "--threads", "1", "--out", str(run), "--no-progress"]) == 0
    export = tmp_path / "export"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--int8", "--calib-samples", "16",
                 "--eval-samples", "8", "--out", str(export), "--quiet"]) == 0
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["input"]["shape"] == [1, 64, 64, 3]
    assert manifest["preprocess"]["resize"] == "shorter-side-crop"
