"""Maps the five top-level code folders into the ``mutagen_actors`` namespace.

The repository keeps ``actors/``, ``supervisor/``, ``agent/``, ``wire/`` and ``cli/`` at its top
level (the owner's design card); installed, they are ``mutagen_actors.actors`` and so on.  The
package list is computed from the folders so that a new subpackage needs no edit here.
"""

import os

from setuptools import setup

FOLDERS = ("actors", "supervisor", "agent", "wire", "cli")


def _packages():
    found = {}
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            if "__init__.py" in filenames:
                name = "mutagen_actors." + dirpath.replace(os.sep, ".")
                found[name] = dirpath
    return found


PACKAGES = _packages()
setup(packages=sorted(PACKAGES), package_dir=PACKAGES)
