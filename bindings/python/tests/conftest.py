# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures. The end-to-end enclave is started by run_tests.sh (ctest bindings.python),
which passes it in ENCLAVIA_TEST_URL / _TRUST / _PORT / _GREETING; without them those tests skip
(ENCLAVIA_REQUIRE_E2E=1 makes that a failure)."""

import json
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
VECTORS = REPO / "tests" / "conformance" / "vectors.json"


def load_vectors():
    if not VECTORS.is_file():
        return []
    data = json.loads(VECTORS.read_text())
    return data["cases"] if isinstance(data, dict) else data


def fixtures_dir():
    env = os.environ.get("ENCLAVIA_FIXTURES")
    path = pathlib.Path(env) if env else REPO.parent / "shared" / "fixtures"
    return path if path.is_dir() else None


class Enclave:
    def __init__(self, url, trust, port, greeting):
        self.url, self.trust, self.port, self.greeting = url, trust, port, greeting


@pytest.fixture(scope="session")
def enclave():
    url = os.environ.get("ENCLAVIA_TEST_URL")
    if not url:
        if os.environ.get("ENCLAVIA_REQUIRE_E2E") == "1":
            pytest.fail("ENCLAVIA_TEST_URL is not set")
        pytest.skip("no enclave: run through run_tests.sh (ctest -R bindings.python)")
    return Enclave(
        url,
        pathlib.Path(os.environ["ENCLAVIA_TEST_TRUST"]),
        int(os.environ["ENCLAVIA_TEST_PORT"]),
        os.environ.get("ENCLAVIA_TEST_GREETING", "world"),
    )
