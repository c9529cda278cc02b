"""Build hook for the one optional C extension; everything else is in pyproject.toml.

``workbench.load._otlp_scan`` scans OTLP JSON Lines several times faster than
pyarrow's JSON reader. It is optional: without a C compiler the install still
succeeds and the loader uses pyarrow alone (same results, slower).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("workbench.load._otlp_scan", ["workbench/load/_otlp_scan.c"], optional=True,
                             depends=["workbench/load/_utf8.h", "workbench/load/_encode.h",
                                      "workbench/load/_buffers.h", "workbench/load/_json_text.h",
                                      "workbench/load/_views.h", "workbench/load/_json_objects.h",
                                      "workbench/load/_text_checks.h", "workbench/load/_span_index.h"],
                             extra_compile_args=["-O2", "-std=c99"])])
