from __future__ import annotations

import shutil

from course_utils import data, paths
from course_utils.models import CHECKPOINT_FILE, load_pretrained
from tools import pretrain


def test_pretraining_is_deterministic() -> None:
    first, acc1 = pretrain.pretrain(epochs=1, k_per_class=40)
    second, acc2 = pretrain.pretrain(epochs=1, k_per_class=40)
    assert pretrain.checkpoint_bytes(first) == pretrain.checkpoint_bytes(second)
    assert acc1 == acc2 > 0.5


def test_main_writes_checkpoint_and_checksum(tmp_path, monkeypatch, capsys) -> None:
    for name in ["SHA256SUMS", data.DATA_FILE]:
        shutil.copy(paths.data_dir() / name, tmp_path / name)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(pretrain, "EPOCHS", 1)
    monkeypatch.setattr(pretrain.pretrain, "__defaults__", (1, 40, 0))
    assert pretrain.main([]) == 0
    assert paths.expected_sha256(CHECKPOINT_FILE) == paths.sha256_of(tmp_path / CHECKPOINT_FILE)
    written = (tmp_path / CHECKPOINT_FILE).read_bytes()
    assert pretrain.checkpoint_bytes(load_pretrained()) == written, "the course loads the checkpoint just written"
    assert pretrain.main(["--check"]) == 0
    assert "identical" in capsys.readouterr().out
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"x")
    assert pretrain.main(["--check"]) == 1
