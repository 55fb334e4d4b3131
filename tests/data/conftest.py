"""Fixtures of the data-layer tests."""

import pytest


@pytest.fixture(params=["frame", "csv", "parquet"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param
