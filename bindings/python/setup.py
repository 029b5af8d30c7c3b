# SPDX-License-Identifier: Apache-2.0
"""Copies the built C ABI library (libenclavia-client.so) into the package.

It is taken from $ENCLAVIA_BUILD_DIR/lib, else from the repository's build/lib (build it first:
`cmake --build build --target enclavia_client_c`). Everything else is in pyproject.toml.
"""

import os
import pathlib
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

LIBRARY = "libenclavia-client.so"
HERE = pathlib.Path(__file__).resolve().parent


def find_library() -> pathlib.Path:
    build = os.environ.get("ENCLAVIA_BUILD_DIR")
    candidates = [pathlib.Path(build) / "lib" / LIBRARY] if build else []
    candidates.append(HERE.parents[1] / "build" / "lib" / LIBRARY)
    for path in candidates:
        if path.is_file():
            return path
    raise SystemExit(
        "enclavia: %s not found in %s; build the enclavia_client_c target or set "
        "ENCLAVIA_BUILD_DIR" % (LIBRARY, ", ".join(str(c.parent) for c in candidates))
    )


class BuildPy(build_py):
    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "enclavia" / LIBRARY
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(find_library(), target)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPy}, distclass=BinaryDistribution)
