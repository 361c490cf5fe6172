"""setuptools entry point; the metadata lives in pyproject.toml.

The Cython build of the kernels will be declared here (``ext_modules``).
"""
from setuptools import setup

setup()
