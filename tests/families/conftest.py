"""Fixtures the family tests share: the merged schema and TINY checked against it (a test module
that needs its own sections defines its own ``config``)."""

from __future__ import annotations

import copy

import pytest
from tiny import TINY

from lossland.pipeline import config as C


@pytest.fixture(scope="module")
def schema():
    return C.load_schema()


@pytest.fixture(scope="module")
def config(schema):
    return C.check_config(copy.deepcopy(TINY), schema)
