"""Entries that are not directories share one empty, immutable ``contents`` (memory: an empty
dict per file was as big as the entry itself); directories own theirs. Values are unchanged:
equality, encoding and decoding behave as with ``{}``."""

import copy
import pickle

import msgspec
import pytest

from mutagen_actors.actors.sync.model import NO_CONTENTS, Entry, Kind

DIGEST = b"d" * 16


@pytest.mark.parametrize("entry,shared", [
    (Entry.file(DIGEST), True),
    (Entry.file(DIGEST, executable=True), True),
    (Entry(Kind.FILE, digest=DIGEST), True),
    (Entry(Kind.FILE, {}, DIGEST), True),  # an explicit empty dict is replaced
    (Entry.symlink("target"), True),
    (Entry.untracked(), True),
    (Entry.problematic("unreadable"), True),
    (Entry(Kind.DIRECTORY), False),
    (Entry.directory(), False),
    (Entry.directory({"a": Entry.file(DIGEST)}), False),
    (Entry(Kind.PHANTOM), False),
    (Entry.phantom(), False),
], ids=["file", "executable", "file-kw", "file-explicit-empty", "symlink", "untracked",
        "problematic", "dir-default", "dir", "dir-full", "phantom-default", "phantom"])
def test_contents_of_each_kind(entry, shared):
    assert (entry.contents is NO_CONTENTS) is shared
    if not shared:
        assert type(entry.contents) is dict
    assert entry.contents == ({} if not entry.contents else entry.contents)


@pytest.mark.parametrize("codec", ["msgpack", "json"])
@pytest.mark.parametrize("tree", [
    Entry.file(DIGEST),
    Entry.directory(),
    Entry.directory({"f": Entry.file(DIGEST), "l": Entry.symlink("f"), "e": Entry.directory(),
                     "d": Entry.directory({"g": Entry.file(DIGEST, True)}),
                     "u": Entry.untracked(), "p": Entry.problematic("x"),
                     "ph": Entry.phantom({"k": Entry.file(DIGEST)})}),
], ids=["file", "empty-dir", "mixed"])
def test_round_trip_keeps_values_and_sharing(codec, tree):
    module = getattr(msgspec, codec)
    encoded = module.encode(tree)
    decoded = module.decode(encoded, type=Entry)
    assert decoded == tree and tree == decoded
    assert module.encode(decoded) == encoded
    stack = [decoded]
    while stack:
        entry = stack.pop()
        if entry.kind in (Kind.DIRECTORY, Kind.PHANTOM):
            assert type(entry.contents) is dict
            stack.extend(entry.contents.values())
        else:
            assert entry.contents is NO_CONTENTS


def test_encoding_is_the_same_bytes_as_an_empty_dict():
    # a 6-field array: kind 1, an empty map, the digest as bin 8 ...
    assert msgspec.msgpack.encode(Entry.file(DIGEST)) == \
        b"\x96\x01\x80\xc4\x10" + DIGEST + b"\xc2\xa0\xa0"


@pytest.mark.parametrize("mutate", [
    lambda c: c.__setitem__("x", 1), lambda c: c.__delitem__("x"), lambda c: c.update(x=1),
    lambda c: c.setdefault("x", 1), lambda c: c.pop("x"), lambda c: c.popitem(),
    lambda c: c.clear(), lambda c: c.__ior__({"x": 1}),
], ids=["set", "del", "update", "setdefault", "pop", "popitem", "clear", "ior"])
def test_shared_contents_cannot_change(mutate):
    with pytest.raises(TypeError):
        mutate(Entry.file(DIGEST).contents)
    assert NO_CONTENTS == {} and len(NO_CONTENTS) == 0


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy,
                                       lambda e: pickle.loads(pickle.dumps(e))],
                         ids=["copy", "deepcopy", "pickle"])
def test_copies_stay_equal(duplicate):
    tree = Entry.directory({"f": Entry.file(DIGEST), "d": Entry.directory()})
    again = duplicate(tree)
    assert again == tree
    assert again.contents["f"].contents == {}
    again.contents["d"].contents["new"] = Entry.file(DIGEST)  # directories stay mutable dicts
