"""What a directory holds on disk, for tests that compare two ways of building the same tree."""

from __future__ import annotations

import os
import stat


def disk(root: str) -> dict:
    """Everything below ``root``: relative path -> ("link", target) | ("dir", permission bits) |
    ("file", permission bits, content). Symbolic links are reported, never followed."""
    found = {}
    for parent, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(parent, name)
            st = os.lstat(path)
            relative = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[relative] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as handle:
                    found[relative] = ("file", stat.S_IMODE(st.st_mode), handle.read())
    return found
