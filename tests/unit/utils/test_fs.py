"""Bounded reads of regular files (the one helper the secrets scan and model loading share)."""

from __future__ import annotations

import os

import pytest

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.fs import BoundedReadError, read_bounded, read_regular_file


def test_a_regular_file_up_to_the_limit_is_read_whole(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10) == b"x" * 10
    assert read_regular_file(path, max_bytes=10) == b"x" * 10


def test_one_byte_over_the_limit_is_refused_with_its_size(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 11)
    with pytest.raises(BoundedReadError, match="large") as info:
        read_bounded(path, 10)
    assert info.value.size == 11
    with pytest.raises(AisecInputError, match="is 11 bytes, more than the limit of 10"):
        read_regular_file(path, max_bytes=10, what="manifest")


def test_a_final_symlink_is_refused_unless_followed(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"data")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(BoundedReadError, match="symlink"):
        read_bounded(link, 100)
    assert read_bounded(link, 100, follow_symlinks=True) == b"data"
    with pytest.raises(AisecInputError, match="is a symlink: refusing it"):
        read_regular_file(link, max_bytes=100)


def test_a_fifo_is_never_read_and_never_blocks(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BoundedReadError, match="special") as info:
        read_bounded(fifo, 100)  # O_NONBLOCK: returns at once although no writer exists
    assert info.value.mode and not info.value.error
    with pytest.raises(AisecInputError, match="is not a regular file"):
        read_regular_file(fifo, max_bytes=100)


def test_a_missing_file_is_unreadable_with_the_os_reason(tmp_path):
    with pytest.raises(BoundedReadError, match="unreadable") as info:
        read_bounded(tmp_path / "nope", 100)
    assert isinstance(info.value.error, FileNotFoundError)
    with pytest.raises(AisecInputError, match="is unreadable: No such file"):
        read_regular_file(tmp_path / "nope", max_bytes=100)


def test_a_limit_that_is_not_positive_is_refused(tmp_path):
    with pytest.raises(AisecInputError, match="max_bytes must be positive"):
        read_regular_file(tmp_path / "any", max_bytes=0)
