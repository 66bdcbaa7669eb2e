from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sentinel(tmp_path: Path):
    """A file every hostile payload would create if anything ran it; asserted absent afterwards."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a scanned payload was executed"
