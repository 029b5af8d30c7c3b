# SPDX-License-Identifier: Apache-2.0
"""The status -> exception map agrees with the C library, and errors carry one-line messages."""

import os
import pathlib

import pytest

import enclavia
from enclavia import _lib, errors


def test_every_status_name_matches_the_library():
    lib = _lib.lib()
    assert lib.enclavia_status_name(0) == b"ok"
    for code in range(1, len(errors.STATUS_NAMES)):
        name = lib.enclavia_status_name(code).decode()
        assert name == errors.STATUS_NAMES[code]
        error = errors.error_for(code, "m")
        assert error.status == name and error.code == code and str(error) == "m"
        assert type(error) is not enclavia.Error
    assert lib.enclavia_status_name(len(errors.STATUS_NAMES)) == b"unknown"


def test_classes_are_distinct_and_exported():
    classes = [errors.ERRORS_BY_STATUS[n] for n in errors.STATUS_NAMES[1:]]
    assert len(set(classes)) == len(classes) == 14
    for cls in classes:
        assert issubclass(cls, enclavia.Error)
        assert getattr(enclavia, cls.__name__) is cls
    assert errors.error_for(99, "x").status == "unknown"
    assert issubclass(enclavia.InvalidArgument, ValueError)


def test_a_real_failure_raises_the_subclass_with_a_one_line_message():
    with pytest.raises(enclavia.Error) as info:
        enclavia.Trust.load("/nonexistent/trust.toml")
    assert info.value.status != "ok" and info.value.code > 0
    assert str(info.value) and "\n" not in str(info.value)
    assert type(info.value) is errors.ERRORS_BY_STATUS[info.value.status]


def test_uses_the_installed_library_when_installed():
    venv = os.environ.get("ENCLAVIA_EXPECT_INSTALLED")
    if not venv:
        pytest.skip("not run from run_tests.sh")
    package = pathlib.Path(enclavia.__file__).resolve().parent
    assert str(package).startswith(str(pathlib.Path(venv).resolve()))
    assert _lib.lib().path == package / _lib.LIBRARY_NAME
