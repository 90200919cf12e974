"""Issue 11, defects 4-6: every failure is one clear line, temporary files go, minor surprises fixed.

Before the fixes (checked on the original code, by hand): a full disk during a checkpoint save,
``--finetune-from`` given garbage, ``--warmup-epochs inf``, a 40000x40000 PNG, a CIFAR pickle
declaring 2**44 elements and a truncated ``cifar-10-python.tar.gz`` printed raw tracebacks; a
non-JSON ``--normaliser`` said only "Expecting value: line 1 column 1"; IDX files whose dims overflow
int64 or whose labels are NaN gave errors naming no file; ``convert(net, input_size=(3, 32, 32))``
did not say the batch dimension was missing; ``eval --checkpoint`` on an unfinished run silently
used the latest step checkpoint; ``--sync-batchnorm`` was accepted silently in one CPU process.
"""

from __future__ import annotations

import errno
import gzip
import io
import pickle
import stat
import struct
import tarfile

import numpy as np
import pytest
import torch
from security_helpers import TINY, cli, png_header, trained_run
from torch import nn

import antialias.runs.rundir as rundir_module
from antialias.data import load_dataset
from antialias.data._errors import CorruptDataError
from antialias.data.cifar import safe_unpickle
from antialias.data.idx import read_idx

# ----------------------------------------------------------------------------------- the handler


def test_known_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    args = ["train", *TINY, "--epochs", 1, "--warmup-epochs", "inf", "--out", tmp_path / "r"]
    rc, _, err = cli(args, capsys)
    assert rc == 1 and err.count("\n") == 1 and err.startswith("antialias train: error: `TrainConfig`")
    rc, _, err = cli(["--debug", *args], capsys)
    assert rc == 1 and "Traceback (most recent call last)" in err and "warmup_epochs" in err


def test_unexpected_errors_are_one_line_naming_the_bug_and_ctrl_c_is_130(monkeypatch, tmp_path, capsys):
    import antialias.cli as cli_module

    def boom(args):
        raise ZeroDivisionError("inside")

    monkeypatch.setattr(cli_module, "run_from_args", boom)
    rc, _, err = cli(["train", "--out", tmp_path], capsys)
    assert rc == 1 and "antialias train: error: unexpected ZeroDivisionError: inside" in err and "--debug" in err
    assert "Traceback" not in err

    def interrupt(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "run_from_args", interrupt)
    rc, _, err = cli(["train", "--out", tmp_path], capsys)
    assert rc == 130 and "antialias train: interrupted" in err


# ----------------------------------------------------------------------------------- 4. tracebacks


# What a full disk raises: Python's own writes an OSError(ENOSPC); torch.save a RuntimeError from its
# zip writer (the case that left a .tmp-step-* folder and a traceback before the fix).
DISK_FULL = [OSError(errno.ENOSPC, "No space left on device"),
             RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file "
                          "data/0: file write failed")]


@pytest.mark.parametrize("error", DISK_FULL, ids=["OSError", "RuntimeError"])
def test_disk_full_during_a_checkpoint_keeps_the_previous_state_and_no_temporary_folder(error, tmp_path, capsys,
                                                                                        monkeypatch):
    run = trained_run(tmp_path / "run", capsys, "--save-every-steps", 2)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    real_save = torch.save

    def full(obj, f, *a, **k):
        if str(f).endswith("state.pt"):
            real_save(obj, f, *a, **k)  # a partial file exists, as on a real full disk
            raise error
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(rundir_module.torch, "save", full)
    rc, _, err = cli(["train", "--resume", "--out", run, "--epochs", 2, "--force-resume"], capsys)
    assert rc == 1 and "could not be written" in err and "is intact" in err and "Traceback" not in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before  # no .tmp-step-* folder
    monkeypatch.setattr(rundir_module.torch, "save", real_save)
    rc, _, err = cli(["train", "--resume", "--out", run, "--epochs", 2, "--force-resume"], capsys)
    assert rc == 0, err  # the previous state resumes


@pytest.mark.parametrize("content", [b"garbage", b"PK\x03\x04broken zip", pickle.dumps({"w": 1}), b""])
def test_finetune_from_garbage_is_a_clear_error(content, tmp_path, capsys):
    (tmp_path / "w.pt").write_bytes(content)
    rc, _, err = cli(["train", *TINY, "--epochs", 1, "--finetune-from", tmp_path / "w.pt", "--out",
                      tmp_path / "r"], capsys)
    assert rc == 1 and "finetune_from" in err and "w.pt" in err and "Traceback" not in err


def test_a_decompression_bomb_png_is_a_clear_error(tmp_path, capsys):
    for split in ("train", "val"):
        (tmp_path / "imgs" / split / "a").mkdir(parents=True)
        (tmp_path / "imgs" / split / "a" / "big.png").write_bytes(png_header(40000, 40000))
    with pytest.raises(CorruptDataError, match=r"big\.png must be an image of at most .*decompression bomb"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}", split="train")[0]
    rc, _, err = cli(["train", *TINY[:2], "--data", f"imagefolder:{tmp_path / 'imgs'}", "--batch-size", 1,
                      "--epochs", 1, "--progress", "none", "--out", tmp_path / "r"], capsys)
    assert rc == 1 and "decompression bomb" in err and "Traceback" not in err


def _cifar_batch(data: object) -> bytes:
    return pickle.dumps({b"data": data, b"labels": [0]}, protocol=2)


class _Declares:
    """Pickles as numpy's array reconstruction with a hostile shape."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __reduce__(self):
        reconstruct, _ = np.zeros(1, np.uint8).__reduce__()[:2]
        return reconstruct, (np.ndarray, self.shape, b"B")


def test_a_cifar_pickle_declaring_a_huge_array_is_refused_without_allocating():
    with pytest.raises(CorruptDataError, match=r"x is not a valid CIFAR pickle.*more than"):
        safe_unpickle(_cifar_batch(_Declares((2**44,))), source="x")


def _cifar_archive(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_truncated_cifar_archive_is_a_clear_error(tmp_path):
    images = np.zeros((1, 3072), np.uint8)
    batch = pickle.dumps({"data": images, "labels": [0]}, protocol=2)
    members = {"batches.meta": pickle.dumps({"label_names": [str(i) for i in range(10)]}, protocol=2),
               **{f"data_batch_{i}": batch for i in range(1, 6)}, "test_batch": batch}
    archive = tmp_path / "cifar-10-python.tar.gz"
    _cifar_archive(archive, members)
    assert len(load_dataset("cifar10", root=tmp_path, split="test")) == 1
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match=r"cifar-10-python\.tar\.gz"):
        load_dataset("cifar10", root=tmp_path, split="train")


def _idx(dtype_code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">BBBB", 0, 0, dtype_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_idx_dims_overflowing_int64_name_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    # 65536**4 = 2**64 wraps to 0 in int64: before the fix the header alone "matched" and reshape failed
    # with a ValueError naming no file
    for dims in ((65536,) * 4, (2**32 - 1,) * 3):
        path.write_bytes(_idx(0x08, dims, b""))
        with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte must hold \d+ bytes"):
            read_idx(path)


def test_idx_nan_labels_name_the_file(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx(0x08, (2, 2, 2), b"\x00" * 8))
    labels = np.array([0.0, np.nan], ">f4").tobytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(0x0D, (2,), labels))
    with pytest.raises(CorruptDataError, match=r"train-labels-idx1-ubyte must hold integer labels.*NaN"):
        load_dataset("mnist", root=tmp_path, split="train")


def test_a_gzip_bomb_idx_is_refused(tmp_path, monkeypatch):
    import antialias.data.idx as idx_module

    monkeypatch.setattr(idx_module, "MAX_IDX_BYTES", 1000)
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00" * 5000))
    with pytest.raises(CorruptDataError, match="at most 1000 bytes"):
        read_idx(path)


# ----------------------------------------------------------------------------------- 5. unclear errors


def test_normaliser_not_json_names_the_file(tmp_path, capsys):
    (tmp_path / "n.json").write_text("not json")
    rc, _, err = cli(["eval", "corruption", *TINY[:4], "--normaliser", tmp_path / "n.json", "--out",
                      tmp_path / "c.json"], capsys)
    assert rc == 1 and "n.json" in err and "not valid JSON" in err


def test_convert_unbatched_input_size_says_so():
    from antialias import convert

    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 2))
    with pytest.raises(ValueError, match=r"no batch dimension: pass input_size=\(1, 3, 32, 32\)"):
        convert(net, input_size=(3, 32, 32))


def test_layers_run_on_meta_tensors_like_max_pool():
    from antialias.layers import BlurPool2d, MaxBlurPool2d

    x = torch.empty(2, 3, 17, 16, device="meta")
    assert MaxBlurPool2d(2)(x).shape == nn.MaxPool2d(2)(x).shape == (2, 3, 8, 8)
    assert BlurPool2d(3, stride=2)(x).shape == (2, 3, 9, 8)


# ----------------------------------------------------------------------------------- 6. minor


def test_eval_of_an_unfinished_run_says_it_uses_the_latest_step_checkpoint(tmp_path, capsys):
    run = trained_run(tmp_path / "run", capsys, "--save-every-steps", 2)
    (run / "model.safetensors").unlink()
    (run / "model.json").unlink()
    rc, _, err = cli(["eval", "consistency", "--checkpoint", run, "--data", "antialias.train._demo:tiny_data",
                      "--out", tmp_path / "e.json"], capsys)
    assert rc == 0, err
    assert "warning:" in err and "unfinished" in err and "latest checkpoint step-" in err


def test_written_files_are_0644(tmp_path, capsys):
    run = trained_run(tmp_path / "run", capsys)
    step = next((run / "checkpoints").iterdir())
    for path in (run / "model.safetensors", run / "model.json", run / "config.json", step / "model.safetensors",
                 step / "state.pt"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o644 == 0o644, path  # readable like every other file


def test_sync_batchnorm_in_one_process_warns():
    from antialias.train import TrainConfig, train

    cfg = TrainConfig(model="antialias.train._demo:tiny_model", data="antialias.train._demo:tiny_data",
                      filter_size=None, batch_size=16, epochs=1, max_steps=1, progress="none", sync_batchnorm=True)
    with pytest.warns(UserWarning, match="`sync_batchnorm` has no effect in a single process"):
        train(cfg)
