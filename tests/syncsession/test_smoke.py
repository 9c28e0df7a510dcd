import os

from .conftest import tree, wait_same


def test_files_appear(sync, roots):
    alpha, beta = roots
    with open(os.path.join(alpha, "a.txt"), "w") as f:
        f.write("hello")
    identifier = sync.create(alpha, beta)
    assert identifier.startswith("sync_")
    wait_same(alpha, beta)
    assert tree(beta)["a.txt"][1] == b"hello"
