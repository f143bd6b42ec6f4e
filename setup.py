"""Packages for setuptools; everything else is in pyproject.toml.

setup.py only because pyproject's package discovery cannot add `specc.specs`, the
top-level specs/ folder shipped inside the package (see [tool.setuptools.package-dir]),
so `pip install specc` carries the reference specs that `extends` finds by name.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["specc", "specc.*"]) + ["specc.specs"])
