"""A mistyped region is answered with the region it most likely meant, or with none."""

from __future__ import annotations

import pytest

from sidecar.aws import known_regions
from sidecar.run import closest_region

REGIONS = known_regions()


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("eu-west-l", "eu-west-1"),  # a look-alike character, not just any of eu-west-1/2/3
        ("us-east-O", "us-east-1"),  # no us-east-0 exists: similarity decides
        ("eu-wset-1", "eu-west-1"),
        ("us-east1", "us-east-1"),
        ("ap-southeast-2a", "ap-southeast-2"),
        ("mars-north-1", None),
        ("", None),
    ],
)
def test_closest_region(typed: str, meant: str | None) -> None:
    assert closest_region(typed, REGIONS) == meant
