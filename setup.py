"""Maps the top-level folders onto the ``deepcac2`` package.

pyproject.toml holds all metadata; this file only computes the package list so that
a new subpackage under pipeline/, schemas/, qa/ or release/ is never forgotten.
"""

from setuptools import find_packages, setup

ROOTS = {
    "deepcac2": "deepcac2",
    "deepcac2.pipeline": "pipeline",
    "deepcac2.schemas": "schemas",
    "deepcac2.qa": "qa",
    "deepcac2.release": "release",
}

packages = []
for package, folder in ROOTS.items():
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=ROOTS,
    package_data={"": ["*.md", "*.html", "*.js", "*.css", "*.json", "*.tsv", "*.csv", "*.sql"]},
)
