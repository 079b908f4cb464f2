"""The one atomic writer (rasa.io): the target appears whole or not at all, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from rasa.io import atomic_folder, atomic_open, write_csv_atomic, write_jsonl_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_writers_replace_the_target_and_create_its_folder(tmp_path):
    write_csv_atomic(tmp_path / "a" / "t.csv", [{"x": 1, "y": "é"}, {"y": 2, "z": 3}], first=["z"])
    assert (tmp_path / "a" / "t.csv").read_text(encoding="utf-8") == "z,x,y\n,1,é\n3,,2\n"
    write_jsonl_atomic(tmp_path / "r.jsonl", iter([{"b": 1, "a": "é"}]), sort_keys=True)
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == '{"a": "é", "b": 1}\n'
    write_text_atomic(tmp_path / "m.json", "{}\n")
    write_text_atomic(tmp_path / "m.json", "[]\n")
    assert (tmp_path / "m.json").read_text() == "[]\n"
    with atomic_open(tmp_path / "b.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b.bin", "m.json", "r.jsonl"]


def test_files_get_the_umasks_permissions_not_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode 'a' must be 'w' or 'wb'"), atomic_open(tmp_path / "f", "a"):
        pass


def test_folder_is_replaced_whole_or_kept(tmp_path):
    target = tmp_path / "weights"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "new.bin").write_bytes(b"half")
        raise RuntimeError("crash")
    assert [p.name for p in target.iterdir()] == ["old.bin"]
    with atomic_folder(target) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]
