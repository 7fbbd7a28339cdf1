"""Build the compiled hot paths (src_cy/*.pyx) into private modules of mmate_fast._cy.

Set MMATE_NO_EXTENSIONS=1 at build time to skip compiling (the pure-Python twins are used then).
"""
from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent


def _extensions() -> list:
    if os.environ.get("MMATE_NO_EXTENSIONS") == "1":
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    sources = sorted((HERE / "src_cy").glob("*.pyx"))
    if not sources:  # an sdist without its Cython sources would build a pure-Python wheel silently
        raise RuntimeError("no src_cy/*.pyx to compile (an incomplete sdist?): set MMATE_NO_EXTENSIONS=1 "
                           "to build without the compiled extensions")
    mods = []
    for pyx in sources:
        mods.append(Extension(f"mmate_fast._cy.{pyx.stem}", [str(pyx.relative_to(HERE))],
                              extra_compile_args=["-O3"]))
    return cythonize(
        mods,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True,
                             "embedsignature": True},
        annotate=os.environ.get("MMATE_ANNOTATE") == "1",
    )


setup(ext_modules=_extensions())
