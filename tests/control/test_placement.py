"""Copying a TrainedModel into a replica's private folder cannot be turned against the
platform by the replica: a link where the copy goes is refused, links in the model are left
out, and removing a copy never follows a link the replica put in its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.control.placement import PlacementError, place_copy, remove_copy

FOLDER = "trained-models"


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "cache" / "m"
    (model / "sub").mkdir(parents=True)
    (model / "model.joblib").write_bytes(b"weights")
    (model / "sub" / "extra.txt").write_text("x")
    (model / "leak").symlink_to("/etc/hostname")
    return model


def test_copies_a_folder_without_its_links(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    copy = place_copy(_model(tmp_path), private, FOLDER, "tm-1", None)
    assert copy.parent.parent == private / FOLDER
    assert copy.name == "model" and copy.parent.name.startswith("tm-1-")
    assert (copy / "model.joblib").read_bytes() == b"weights"
    assert (copy / "sub" / "extra.txt").read_text() == "x"
    assert not (copy / "leak").exists() and not (copy / "leak").is_symlink()
    assert (copy.stat().st_mode & 0o777) == 0o700
    remove_copy(copy, private, FOLDER)
    assert not copy.parent.exists()


def test_copies_a_file(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    source = tmp_path / "model.onnx"
    source.write_bytes(b"onnx")
    copy = place_copy(source, private, FOLDER, "tm", None)
    assert copy.name == "model.onnx" and copy.read_bytes() == b"onnx"


def test_a_link_where_the_copy_goes_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    elsewhere = tmp_path / "platform-secrets"
    elsewhere.mkdir()
    (private / FOLDER).symlink_to(elsewhere)
    with pytest.raises(PlacementError):
        place_copy(_model(tmp_path), private, FOLDER, "tm", None)
    assert list(elsewhere.iterdir()) == []


def test_removing_never_follows_a_link_put_in_place(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    copy = place_copy(_model(tmp_path), private, FOLDER, "tm", None)
    # The replica swaps the folder for a link to a place holding a folder of the same name.
    victim = tmp_path / "victim"
    (victim / copy.parent.name).mkdir(parents=True)
    (victim / copy.parent.name / "precious").write_text("keep")
    (private / FOLDER).rename(private / "moved")
    (private / FOLDER).symlink_to(victim)
    remove_copy(copy, private, FOLDER)
    assert (victim / copy.parent.name / "precious").read_text() == "keep"
