"""The reconcile specification as a table (behaviour reference sections 3, 4, 6).

Each row: a name, the modes it applies to, the ancestor / alpha / beta trees built from the tiny
fixtures below, and the expected ancestor changes, alpha changes, beta changes and conflicts.
Rows with the same scenario but a mode-dependent outcome appear once per outcome.

Reading guide: the root of most trees is a directory ``R(...)`` whose children are the interesting
part. ``ch(path, old, new)`` is a change; for side changes ``old`` is that side's scanned entry at
``path`` (full subtree), ``new`` the synchronizable content to put there. Ancestor changes carry
no ``old`` and a shallow ``new`` (directories without contents; children follow as their own
changes). ``conflict(root, alpha=[...], beta=[...])`` lists each side's changes relative to the
ancestor, made slim (directories shown without contents).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest

from mutagen_actors.actors.sync.model import Change, Conflict, Entry
from mutagen_actors.actors.sync.reconcile import reconcile
from mutagen_actors.actors.sync.settings import Mode

SAFE = Mode.TWO_WAY_SAFE
RESOLVED = Mode.TWO_WAY_RESOLVED
OWS = Mode.ONE_WAY_SAFE
OWR = Mode.ONE_WAY_REPLICA
TWO = (SAFE, RESOLVED)
ALL = (SAFE, RESOLVED, OWS, OWR)

# --- tiny named fixtures ------------------------------------------------------------------
F = Entry.file(b"\x01" * 16)  # a file
F2 = Entry.file(b"\x02" * 16)  # the file, changed
F3 = Entry.file(b"\x03" * 16)  # the file, changed differently
FX = Entry.file(F.digest, executable=True)  # the file made executable (+x), same content
F2X = Entry.file(F2.digest, executable=True)  # changed content and executable
D0 = Entry.directory()  # an empty directory
L = Entry.symlink("f")  # a relative symlink
L2 = Entry.symlink("sub/g")  # the symlink, retargeted
U = Entry.untracked()  # ignored content or a socket/FIFO/device
P = Entry.problematic("unable to open file: permission denied")  # a scan problem
PH = Entry.phantom()  # an unreified docker-ignore phantom directory


def R(**children: Entry) -> Entry:
    """A directory (used for the root and for nested directories)."""
    return Entry.directory(children)


DF = R(f=F)  # a directory with a file
DF2 = R(f=F2)  # ... whose file changed
DFG = R(f=F, g=F2)  # a directory with two files
DFU = R(f=F, u=U)  # a directory with a file and untracked content
DFP = R(f=F, p=P)  # a directory with a file and a problematic entry


def ch(path: str, old: Optional[Entry], new: Optional[Entry]) -> Change:
    return Change(path, old, new)


def anc(path: str, new: Optional[Entry]) -> Change:
    """An ancestor change: no old value, shallow new value."""
    return Change(path, None, new.shallow() if new is not None else None)


def _slim(change: Change) -> Change:
    return Change(
        change.path,
        change.old.shallow() if change.old is not None else None,
        change.new.shallow() if change.new is not None else None,
    )


def conflict(root: str, alpha: list[Change], beta: list[Change]) -> Conflict:
    return Conflict(root, [_slim(c) for c in alpha], [_slim(c) for c in beta])


@dataclass(frozen=True)
class Case:
    name: str
    modes: tuple[Mode, ...]
    ancestor: Optional[Entry]
    alpha: Optional[Entry]
    beta: Optional[Entry]
    ancestor_changes: tuple = ()
    alpha_changes: tuple = ()
    beta_changes: tuple = ()
    conflicts: tuple = ()


def case(name, modes, ancestor, alpha, beta, *, a=(), al=(), be=(), co=()) -> Case:
    """a: ancestor changes, al: alpha changes, be: beta changes, co: conflicts."""
    return Case(name, tuple(modes), ancestor, alpha, beta, tuple(a), tuple(al), tuple(be), tuple(co))


CASES = [
    # --- nothing to do ---------------------------------------------------------------------
    case("all-absent", ALL, None, None, None),
    case("unchanged-file", ALL, R(x=F), R(x=F), R(x=F)),
    case("unchanged-empty-dir", ALL, R(x=D0), R(x=D0), R(x=D0)),
    case("unchanged-nested-dirs", ALL, R(x=R(y=DFG)), R(x=R(y=DFG)), R(x=R(y=DFG))),
    case("unchanged-symlink", ALL, R(x=L), R(x=L), R(x=L)),
    case("unchanged-executable", ALL, R(x=FX), R(x=FX), R(x=FX)),
    case("untracked-new-on-alpha", ALL, R(), R(x=U), R()),
    case("untracked-new-on-both", ALL, R(), R(x=U), R(x=U)),
    case("untracked-new-inside-agreeing-dirs", ALL, R(x=D0), R(x=R(u=U)), R(x=R(u=U))),
    case("untracked-alpha-only-inside-agreeing-dirs", ALL, R(x=DF), R(x=DFU), R(x=DF)),
    case("phantom-new-on-beta-is-untracked", ALL, R(), R(), R(x=PH)),
    # --- problematic paths are skipped -----------------------------------------------------
    case("problematic-alpha-vs-beta-created", ALL, R(), R(x=P), R(x=F)),
    case("problematic-beta-vs-alpha-modified", ALL, R(x=F), R(x=F2), R(x=P)),
    case("problematic-beta-vs-alpha-deleted", ALL, R(x=F), R(), R(x=P)),
    case("problematic-both", ALL, R(x=F), R(x=P), R(x=P)),
    case("problematic-child-vs-alpha-modified-child", ALL, R(x=DF), R(x=DF2), R(x=R(f=P))),
    case("problematic-child-vs-beta-deleted-child", ALL, R(x=DF), R(x=R(f=P)), R(x=D0)),
    case("problematic-root-alpha", ALL, R(x=F), P, R(x=F2)),
    case("problematic-root-beta", ALL, R(x=F), R(), P),
    case(
        "problematic-beside-a-change-still-syncs-the-change",
        ALL,
        R(p=F, x=F),
        R(p=P, x=F2),
        R(p=F, x=F),
        be=[ch("x", F, F2)],
    ),
    # --- both sides agree: only the ancestor moves -----------------------------------------
    case("both-created-same-file", ALL, R(), R(x=F), R(x=F), a=[anc("x", F)]),
    case(
        "both-created-same-dir-with-file",
        ALL,
        R(),
        R(x=DF),
        R(x=DF),
        a=[anc("x", D0), anc("x/f", F)],
    ),
    case("both-created-same-symlink", ALL, R(), R(x=L), R(x=L), a=[anc("x", L)]),
    case("both-modified-same", ALL, R(x=F), R(x=F2), R(x=F2), a=[anc("x", F2)]),
    case("both-set-executable", ALL, R(x=F), R(x=FX), R(x=FX), a=[anc("x", FX)]),
    case("both-retargeted-symlink-same", ALL, R(x=L), R(x=L2), R(x=L2), a=[anc("x", L2)]),
    case("both-deleted-file", ALL, R(x=F), R(), R(), a=[anc("x", None)]),
    case("both-deleted-dir", ALL, R(x=DFG), R(), R(), a=[anc("x", None)]),
    case("both-now-untracked", ALL, R(x=F), R(x=U), R(x=U), a=[anc("x", None)]),
    case("deleted-on-alpha-untracked-on-beta", ALL, R(x=F), R(), R(x=U), a=[anc("x", None)]),
    case(
        "both-replaced-file-with-dir",
        ALL,
        R(x=F),
        R(x=DF),
        R(x=DF),
        a=[anc("x", D0), anc("x/f", F)],
    ),
    case(
        "both-replaced-dir-with-file",
        ALL,
        R(x=DFG),
        R(x=F),
        R(x=F),
        a=[anc("x", F)],
    ),
    case(
        "both-changed-nested-same",
        ALL,
        R(x=DF),
        R(x=R(f=F2, g=F)),
        R(x=R(f=F2, g=F)),
        a=[anc("x/f", F2), anc("x/g", F)],
    ),
    case(
        "agreement-skips-untracked-child",
        ALL,
        R(),
        R(x=DFU),
        R(x=DF),
        a=[anc("x", D0), anc("x/f", F)],
    ),
    # --- alpha changed, beta did not: alpha -> beta in every mode ---------------------------
    case("alpha-created-file", ALL, R(), R(x=F), R(), be=[ch("x", None, F)]),
    case("alpha-created-empty-dir", ALL, R(), R(x=D0), R(), be=[ch("x", None, D0)]),
    case("alpha-created-dir-with-file", ALL, R(), R(x=DF), R(), be=[ch("x", None, DF)]),
    case(
        "alpha-created-dir-with-untracked-sends-synchronizable-part",
        ALL,
        R(),
        R(x=DFU),
        R(),
        be=[ch("x", None, DF)],
    ),
    case("alpha-created-symlink", ALL, R(), R(x=L), R(), be=[ch("x", None, L)]),
    case("alpha-modified-file", ALL, R(x=F), R(x=F2), R(x=F), be=[ch("x", F, F2)]),
    case("alpha-set-executable", ALL, R(x=F), R(x=FX), R(x=F), be=[ch("x", F, FX)]),
    case("alpha-cleared-executable", ALL, R(x=FX), R(x=F), R(x=FX), be=[ch("x", FX, F)]),
    case("alpha-retargeted-symlink", ALL, R(x=L), R(x=L2), R(x=L), be=[ch("x", L, L2)]),
    case("alpha-replaced-symlink-with-file", ALL, R(x=L), R(x=F), R(x=L), be=[ch("x", L, F)]),
    case("alpha-deleted-file", ALL, R(x=F), R(), R(x=F), be=[ch("x", F, None)]),
    case("alpha-deleted-dir-with-files", ALL, R(x=DFG), R(), R(x=DFG), be=[ch("x", DFG, None)]),
    case("alpha-added-file-in-dir", ALL, R(x=D0), R(x=DF), R(x=D0), be=[ch("x/f", None, F)]),
    case("alpha-replaced-file-with-dir", ALL, R(x=F), R(x=DF), R(x=F), be=[ch("x", F, DF)]),
    case("alpha-replaced-dir-with-file", ALL, R(x=DF), R(x=F), R(x=DF), be=[ch("x", DF, F)]),
    case(
        "alpha-file-became-untracked-removes-beta-copy",
        ALL,
        R(x=F),
        R(x=U),
        R(x=F),
        be=[ch("x", F, None)],
    ),
    case(
        "alpha-modified-deep-file",
        ALL,
        R(x=R(y=R(z=F))),
        R(x=R(y=R(z=F2))),
        R(x=R(y=R(z=F))),
        be=[ch("x/y/z", F, F2)],
    ),
    case(
        "alpha-created-dir-beta-has-same-dir-with-untracked",
        ALL,
        R(),
        R(x=DF),
        R(x=R(u=U)),
        a=[anc("x", D0)],
        be=[ch("x/f", None, F)],
    ),
    case(
        "alpha-changes-in-several-places",
        ALL,
        R(x=F, y=DF, z=L),
        R(x=F2, y=R(f=F, g=F2), z=L),
        R(x=F, y=DF, z=L),
        be=[ch("x", F, F2), ch("y/g", None, F2)],
    ),
    # --- beta changed, alpha did not --------------------------------------------------------
    case("beta-created-file/two-way", TWO, R(), R(), R(x=F), al=[ch("x", None, F)]),
    case("beta-created-file/one-way-safe-leaves-it", (OWS,), R(), R(), R(x=F)),
    case("beta-created-file/replica-removes-it", (OWR,), R(), R(), R(x=F), be=[ch("x", F, None)]),
    case("beta-created-dir/two-way", TWO, R(), R(), R(x=DF), al=[ch("x", None, DF)]),
    case("beta-created-dir/one-way-safe-leaves-it", (OWS,), R(), R(), R(x=DF)),
    case("beta-created-dir/replica-removes-it", (OWR,), R(), R(), R(x=DF), be=[ch("x", DF, None)]),
    case("beta-added-file-in-dir/two-way", TWO, R(x=D0), R(x=D0), R(x=DF), al=[ch("x/f", None, F)]),
    case("beta-added-file-in-dir/one-way-safe-leaves-it", (OWS,), R(x=D0), R(x=D0), R(x=DF)),
    case(
        "beta-added-file-in-dir/replica-removes-it",
        (OWR,),
        R(x=D0),
        R(x=D0),
        R(x=DF),
        be=[ch("x/f", F, None)],
    ),
    case("beta-modified-file/two-way", TWO, R(x=F), R(x=F), R(x=F2), al=[ch("x", F, F2)]),
    case(
        "beta-modified-file/one-way-safe-conflict",
        (OWS,),
        R(x=F),
        R(x=F),
        R(x=F2),
        co=[conflict("x", [ch("x", F, F)], [ch("x", F, F2)])],
    ),
    case("beta-modified-file/replica-reverts", (OWR,), R(x=F), R(x=F), R(x=F2), be=[ch("x", F2, F)]),
    case("beta-set-executable/two-way", TWO, R(x=F), R(x=F), R(x=FX), al=[ch("x", F, FX)]),
    case(
        "beta-set-executable/one-way-safe-conflict",
        (OWS,),
        R(x=F),
        R(x=F),
        R(x=FX),
        co=[conflict("x", [ch("x", F, F)], [ch("x", F, FX)])],
    ),
    case("beta-set-executable/replica-reverts", (OWR,), R(x=F), R(x=F), R(x=FX), be=[ch("x", FX, F)]),
    case("beta-retargeted-symlink/two-way", TWO, R(x=L), R(x=L), R(x=L2), al=[ch("x", L, L2)]),
    case(
        "beta-retargeted-symlink/one-way-safe-conflict",
        (OWS,),
        R(x=L),
        R(x=L),
        R(x=L2),
        co=[conflict("x", [ch("x", L, L)], [ch("x", L, L2)])],
    ),
    case("beta-retargeted-symlink/replica-reverts", (OWR,), R(x=L), R(x=L), R(x=L2), be=[ch("x", L2, L)]),
    case("beta-deleted-file/two-way", TWO, R(x=F), R(x=F), R(), al=[ch("x", F, None)]),
    case("beta-deleted-file/one-way-recreates", (OWS, OWR), R(x=F), R(x=F), R(), be=[ch("x", None, F)]),
    case("beta-deleted-dir/two-way", TWO, R(x=DFG), R(x=DFG), R(), al=[ch("x", DFG, None)]),
    case("beta-deleted-dir/one-way-recreates", (OWS, OWR), R(x=DFG), R(x=DFG), R(), be=[ch("x", None, DFG)]),
    case("beta-replaced-file-with-dir/two-way", TWO, R(x=F), R(x=F), R(x=DF), al=[ch("x", F, DF)]),
    case(
        "beta-replaced-file-with-dir/one-way-safe-conflict",
        (OWS,),
        R(x=F),
        R(x=F),
        R(x=DF),
        co=[conflict("x", [ch("x", F, F)], [ch("x", F, DF)])],
    ),
    case("beta-replaced-file-with-dir/replica-reverts", (OWR,), R(x=F), R(x=F), R(x=DF), be=[ch("x", DF, F)]),
    case("beta-replaced-dir-with-file/two-way", TWO, R(x=DF), R(x=DF), R(x=F), al=[ch("x", DF, F)]),
    case(
        "beta-replaced-dir-with-file/one-way-safe-conflict",
        (OWS,),
        R(x=DF),
        R(x=DF),
        R(x=F),
        co=[conflict("x", [ch("x", DF, DF)], [ch("x", DF, F)])],
    ),
    case("beta-replaced-dir-with-file/replica-reverts", (OWR,), R(x=DF), R(x=DF), R(x=F), be=[ch("x", F, DF)]),
    case("beta-created-untracked-only", ALL, R(), R(), R(x=U)),
    case(
        "beta-only-dir-beside-alpha-file/two-way",
        TWO,
        R(x=F),
        R(x=F),
        R(x=F, y=DF),
        al=[ch("y", None, DF)],
    ),
    case("beta-only-dir-beside-alpha-file/one-way-safe-leaves-it", (OWS,), R(x=F), R(x=F), R(x=F, y=DF)),
    case(
        "beta-only-dir-beside-alpha-file/replica-removes-it",
        (OWR,),
        R(x=F),
        R(x=F),
        R(x=F, y=DF),
        be=[ch("y", DF, None)],
    ),
    # --- both changed differently -----------------------------------------------------------
    case(
        "both-modified-differently/conflict",
        (SAFE, OWS),
        R(x=F),
        R(x=F2),
        R(x=F3),
        co=[conflict("x", [ch("x", F, F2)], [ch("x", F, F3)])],
    ),
    case(
        "both-modified-differently/alpha-wins",
        (RESOLVED, OWR),
        R(x=F),
        R(x=F2),
        R(x=F3),
        be=[ch("x", F3, F2)],
    ),
    case(
        "both-created-different-files/conflict",
        (SAFE, OWS),
        R(),
        R(x=F),
        R(x=F2),
        co=[conflict("x", [ch("x", None, F)], [ch("x", None, F2)])],
    ),
    case(
        "both-created-different-files/alpha-wins",
        (RESOLVED, OWR),
        R(),
        R(x=F),
        R(x=F2),
        be=[ch("x", F2, F)],
    ),
    case(
        "executable-on-alpha-content-edit-on-beta/conflict",
        (SAFE, OWS),
        R(x=F),
        R(x=FX),
        R(x=F2),
        co=[conflict("x", [ch("x", F, FX)], [ch("x", F, F2)])],
    ),
    case(
        "executable-on-alpha-content-edit-on-beta/alpha-wins",
        (RESOLVED, OWR),
        R(x=F),
        R(x=FX),
        R(x=F2),
        be=[ch("x", F2, FX)],
    ),
    case(
        "content-edit-on-alpha-executable-on-beta/conflict",
        (SAFE, OWS),
        R(x=F),
        R(x=F2),
        R(x=FX),
        co=[conflict("x", [ch("x", F, F2)], [ch("x", F, FX)])],
    ),
    case(
        "both-executable-alpha-also-edited/conflict",
        (SAFE,),
        R(x=F),
        R(x=F2X),
        R(x=FX),
        co=[conflict("x", [ch("x", F, F2X)], [ch("x", F, FX)])],
    ),
    case(
        "both-created-file-vs-dir/conflict",
        (SAFE, OWS),
        R(),
        R(x=F),
        R(x=DF),
        co=[conflict("x", [ch("x", None, F)], [ch("x", None, D0)])],
    ),
    case(
        "both-created-file-vs-dir/alpha-wins",
        (RESOLVED, OWR),
        R(),
        R(x=F),
        R(x=DF),
        be=[ch("x", DF, F)],
    ),
    case(
        "both-created-dir-vs-file/conflict",
        (SAFE, OWS),
        R(),
        R(x=DF),
        R(x=F),
        co=[conflict("x", [ch("x", None, DF)], [ch("x", None, F)])],
    ),
    case(
        "both-created-dir-vs-file/alpha-wins",
        (RESOLVED, OWR),
        R(),
        R(x=DF),
        R(x=F),
        be=[ch("x", F, DF)],
    ),
    case(
        "both-retargeted-symlink-differently/conflict",
        (SAFE, OWS),
        R(x=L),
        R(x=L2),
        R(x=Entry.symlink("other")),
        co=[conflict("x", [ch("x", L, L2)], [ch("x", L, Entry.symlink("other"))])],
    ),
    case(
        "both-created-file-vs-symlink/conflict",
        (SAFE, OWS),
        R(),
        R(x=F),
        R(x=L),
        co=[conflict("x", [ch("x", None, F)], [ch("x", None, L)])],
    ),
    case(
        "both-created-file-vs-symlink/alpha-wins",
        (RESOLVED, OWR),
        R(),
        R(x=F),
        R(x=L),
        be=[ch("x", L, F)],
    ),
    case(
        "both-created-same-dir-different-file/conflict-below-dir",
        (SAFE, OWS),
        R(),
        R(x=DF),
        R(x=DF2),
        a=[anc("x", D0)],
        co=[conflict("x/f", [ch("x/f", None, F)], [ch("x/f", None, F2)])],
    ),
    case(
        "both-created-same-dir-different-file/alpha-wins",
        (RESOLVED, OWR),
        R(),
        R(x=DF),
        R(x=DF2),
        a=[anc("x", D0)],
        be=[ch("x/f", F2, F)],
    ),
    case(
        "conflict-blocks-only-its-subtree/safe",
        (SAFE, OWS),
        R(x=F, y=F),
        R(x=F2, y=F2),
        R(x=F3, y=F),
        be=[ch("y", F, F2)],
        co=[conflict("x", [ch("x", F, F2)], [ch("x", F, F3)])],
    ),
    case(
        "conflict-blocks-only-its-subtree/alpha-wins",
        (RESOLVED, OWR),
        R(x=F, y=F),
        R(x=F2, y=F2),
        R(x=F3, y=F),
        be=[ch("x", F3, F2), ch("y", F, F2)],
    ),
    case(
        "conflict-beside-beta-to-alpha-change",
        (SAFE,),
        R(x=F, y=F),
        R(x=F2, y=F),
        R(x=F3, y=F2),
        al=[ch("y", F, F2)],
        co=[conflict("x", [ch("x", F, F2)], [ch("x", F, F3)])],
    ),
    case(
        "conflict-beside-beta-to-alpha-change/alpha-wins",
        (RESOLVED,),
        R(x=F, y=F),
        R(x=F2, y=F),
        R(x=F3, y=F2),
        al=[ch("y", F, F2)],
        be=[ch("x", F3, F2)],
    ),
    case(
        "conflicts-sorted-by-root-path-string",
        (SAFE,),
        R(**{"a": R(z=F), "a-b": F}),
        R(**{"a": R(z=F2), "a-b": F2}),
        R(**{"a": R(z=F3), "a-b": F3}),
        co=[
            conflict("a-b", [ch("a-b", F, F2)], [ch("a-b", F, F3)]),
            conflict("a/z", [ch("a/z", F, F2)], [ch("a/z", F, F3)]),
        ],
    ),
    case(
        "alpha-edits-one-deep-file-beta-another",
        TWO,
        R(x=R(y=F, z=F)),
        R(x=R(y=F2, z=F)),
        R(x=R(y=F, z=F2)),
        al=[ch("x/z", F, F2)],
        be=[ch("x/y", F, F2)],
    ),
    case(
        "alpha-edits-one-deep-file-beta-another/one-way-safe",
        (OWS,),
        R(x=R(y=F, z=F)),
        R(x=R(y=F2, z=F)),
        R(x=R(y=F, z=F2)),
        be=[ch("x/y", F, F2)],
        co=[conflict("x/z", [ch("x/z", F, F)], [ch("x/z", F, F2)])],
    ),
    case(
        "alpha-edits-one-deep-file-beta-another/replica",
        (OWR,),
        R(x=R(y=F, z=F)),
        R(x=R(y=F2, z=F)),
        R(x=R(y=F, z=F2)),
        be=[ch("x/y", F, F2), ch("x/z", F2, F)],
    ),
    case(
        "alpha-edited-inside-dir-beta-replaced-dir-with-symlink/conflict",
        (SAFE,),
        R(x=DF),
        R(x=DF2),
        R(x=L),
        co=[conflict("x", [ch("x/f", F, F2)], [ch("x", DF, L)])],
    ),
    case(
        "alpha-edited-inside-dir-beta-replaced-dir-with-symlink/one-way-safe",
        (OWS,),
        R(x=DF),
        R(x=DF2),
        R(x=L),
        co=[conflict("x", [ch("x", DF, DF2)], [ch("x", DF, L)])],
    ),
    case(
        "alpha-edited-inside-dir-beta-replaced-dir-with-symlink/alpha-wins",
        (RESOLVED, OWR),
        R(x=DF),
        R(x=DF2),
        R(x=L),
        be=[ch("x", L, DF2)],
    ),
    # --- deletion against modification ------------------------------------------------------
    case(
        "alpha-deleted-file-beta-modified/two-way-repropagates",
        TWO,
        R(x=F),
        R(),
        R(x=F2),
        al=[ch("x", None, F2)],
    ),
    case(
        "alpha-deleted-file-beta-modified/one-way-safe-keeps-beta-clears-ancestor",
        (OWS,),
        R(x=F),
        R(),
        R(x=F2),
        a=[anc("x", None)],
    ),
    case(
        "alpha-deleted-file-beta-modified/replica-deletes",
        (OWR,),
        R(x=F),
        R(),
        R(x=F2),
        be=[ch("x", F2, None)],
    ),
    case("alpha-modified-beta-deleted-file", ALL, R(x=F), R(x=F2), R(), be=[ch("x", None, F2)]),
    case("alpha-set-executable-beta-deleted", ALL, R(x=F), R(x=FX), R(), be=[ch("x", None, FX)]),
    case(
        "alpha-deleted-beta-set-executable/two-way",
        TWO,
        R(x=F),
        R(),
        R(x=FX),
        al=[ch("x", None, FX)],
    ),
    case(
        "alpha-deleted-beta-set-executable/one-way-safe",
        (OWS,),
        R(x=F),
        R(),
        R(x=FX),
        a=[anc("x", None)],
    ),
    case(
        "alpha-deleted-dir-beta-added-inside/two-way-repropagates-whole-dir",
        TWO,
        R(x=DF),
        R(),
        R(x=DFG),
        al=[ch("x", None, DFG)],
    ),
    case(
        "alpha-deleted-dir-beta-added-inside/one-way-safe-conflict",
        (OWS,),
        R(x=DF),
        R(),
        R(x=DFG),
        co=[conflict("x", [ch("x", DF, None)], [ch("x/g", None, F2)])],
    ),
    case(
        "alpha-deleted-dir-beta-added-inside/replica-deletes",
        (OWR,),
        R(x=DF),
        R(),
        R(x=DFG),
        be=[ch("x", DFG, None)],
    ),
    case(
        "alpha-deleted-dir-beta-modified-inside/two-way-repropagates",
        TWO,
        R(x=DF),
        R(),
        R(x=DF2),
        al=[ch("x", None, DF2)],
    ),
    case(
        "alpha-deleted-dir-beta-modified-inside/one-way-safe-conflict",
        (OWS,),
        R(x=DF),
        R(),
        R(x=DF2),
        co=[conflict("x", [ch("x", DF, None)], [ch("x/f", F, F2)])],
    ),
    case(
        "alpha-deleted-dir-beta-replaced-it-with-file/two-way",
        TWO,
        R(x=DF),
        R(),
        R(x=F),
        al=[ch("x", None, F)],
    ),
    case(
        "alpha-deleted-dir-beta-replaced-it-with-file/one-way-safe-keeps-beta",
        (OWS,),
        R(x=DF),
        R(),
        R(x=F),
        a=[anc("x", None)],
    ),
    case(
        "alpha-deleted-symlink-beta-replaced-it-with-file/one-way-safe-keeps-beta",
        (OWS,),
        R(x=L),
        R(),
        R(x=F),
        a=[anc("x", None)],
    ),
    case(
        "alpha-deleted-symlink-beta-replaced-it-with-file/replica-deletes",
        (OWR,),
        R(x=L),
        R(),
        R(x=F),
        be=[ch("x", F, None)],
    ),
    case(
        "beta-deleted-dir-alpha-added-inside",
        ALL,
        R(x=DF),
        R(x=DFG),
        R(),
        be=[ch("x", None, DFG)],
    ),
    case(
        "beta-deleted-dir-alpha-edited-and-deleted-inside",
        ALL,
        R(x=DFG),
        R(x=DF2),
        R(),
        be=[ch("x", None, DF2)],
    ),
    case(
        "alpha-replaced-file-with-dir-beta-deleted",
        ALL,
        R(x=F),
        R(x=DF),
        R(),
        be=[ch("x", None, DF)],
    ),
    # --- deletion against deletion ----------------------------------------------------------
    case(
        "alpha-deleted-whole-dir-beta-part/complete-deletion-wins",
        ALL,
        R(x=DFG),
        R(),
        R(x=DF),
        be=[ch("x", DF, None)],
    ),
    case(
        "beta-deleted-whole-dir-alpha-part/complete-deletion-wins",
        TWO,
        R(x=DFG),
        R(x=DF),
        R(),
        al=[ch("x", DF, None)],
    ),
    case(
        "beta-deleted-whole-dir-alpha-part/one-way-restores-alpha-content",
        (OWS, OWR),
        R(x=DFG),
        R(x=DF),
        R(),
        be=[ch("x", None, DF)],
    ),
    case(
        "alpha-deleted-whole-dir-beta-emptied-nested-dir",
        ALL,
        R(x=R(d=DF, g=F)),
        R(),
        R(x=R(d=D0)),
        be=[ch("x", R(d=D0), None)],
    ),
    case(
        "both-deleted-different-parts/two-way",
        TWO,
        R(x=DFG),
        R(x=R(f=F)),
        R(x=R(g=F2)),
        al=[ch("x/f", F, None)],
        be=[ch("x/g", F2, None)],
    ),
    case(
        "both-deleted-different-parts/one-way",
        (OWS, OWR),
        R(x=DFG),
        R(x=R(f=F)),
        R(x=R(g=F2)),
        be=[ch("x/f", None, F), ch("x/g", F2, None)],
    ),
    # --- untracked or problematic content in the way ----------------------------------------
    case(
        "alpha-deleted-dir-beta-has-untracked-inside/conflict",
        ALL,
        R(x=DF),
        R(),
        R(x=DFU),
        co=[conflict("x", [ch("x", DF, None)], [ch("x/u", None, U)])],
    ),
    case(
        "alpha-deleted-dir-beta-has-problematic-inside/conflict",
        ALL,
        R(x=DF),
        R(),
        R(x=DFP),
        co=[conflict("x", [ch("x", DF, None)], [ch("x/p", None, P)])],
    ),
    case(
        "alpha-deleted-dir-beta-has-phantom-inside/conflict",
        ALL,
        R(x=DF),
        R(),
        R(x=R(f=F, ph=PH)),
        co=[conflict("x", [ch("x", DF, None)], [ch("x/ph", None, PH)])],
    ),
    case(
        "beta-deleted-dir-alpha-has-untracked-inside/two-way-conflict",
        TWO,
        R(x=DF),
        R(x=DFU),
        R(),
        co=[conflict("x", [ch("x/u", None, U)], [ch("x", DF, None)])],
    ),
    case(
        "beta-deleted-dir-alpha-has-untracked-inside/one-way-recreates-synchronizable",
        (OWS, OWR),
        R(x=DF),
        R(x=DFU),
        R(),
        be=[ch("x", None, DF)],
    ),
    case(
        "alpha-created-file-where-beta-has-untracked/conflict",
        ALL,
        R(),
        R(x=F),
        R(x=U),
        co=[conflict("x", [ch("x", None, F)], [ch("x", None, U)])],
    ),
    case(
        "beta-created-file-where-alpha-has-untracked/two-way-conflict",
        TWO,
        R(),
        R(x=U),
        R(x=F),
        co=[conflict("x", [ch("x", None, U)], [ch("x", None, F)])],
    ),
    case(
        "beta-created-file-where-alpha-has-untracked/one-way-safe-leaves-it",
        (OWS,),
        R(),
        R(x=U),
        R(x=F),
    ),
    case(
        "beta-created-file-where-alpha-has-untracked/replica-removes-it",
        (OWR,),
        R(),
        R(x=U),
        R(x=F),
        be=[ch("x", F, None)],
    ),
    case(
        "alpha-modified-file-beta-replaced-it-with-untracked/conflict",
        ALL,
        R(x=F),
        R(x=F2),
        R(x=U),
        co=[conflict("x", [ch("x", F, F2)], [ch("x", None, U)])],
    ),
    case(
        "alpha-replaced-dir-with-file-beta-has-untracked-inside/conflict",
        ALL,
        R(x=DF),
        R(x=F),
        R(x=DFU),
        co=[conflict("x", [ch("x", DF, F)], [ch("x/u", None, U)])],
    ),
    case(
        "untracked-blocks-complete-deletion/conflict",
        ALL,
        R(x=DFG),
        R(),
        R(x=DFU),
        co=[conflict("x", [ch("x", DFG, None)], [ch("x/u", None, U)])],
    ),
    case(
        "untracked-on-alpha-blocks-complete-deletion-from-beta/two-way",
        TWO,
        R(x=DFG),
        R(x=DFU),
        R(),
        co=[conflict("x", [ch("x/u", None, U)], [ch("x", DFG, None)])],
    ),
    case(
        "untracked-on-alpha-partially-deleted/one-way-restores",
        (OWS, OWR),
        R(x=DFG),
        R(x=DFU),
        R(),
        be=[ch("x", None, DF)],
    ),
    case(
        "both-modified-beta-has-untracked/safe-conflict-of-modifications",
        (SAFE, OWS),
        R(x=DF),
        R(x=F2),
        R(x=R(f=F3, u=U)),
        co=[conflict("x", [ch("x", DF, F2)], [ch("x/f", F, F3)])],
    ),
    case(
        "both-modified-beta-has-untracked/alpha-wins-is-blocked",
        (RESOLVED, OWR),
        R(x=DF),
        R(x=F2),
        R(x=R(f=F3, u=U)),
        co=[conflict("x", [ch("x", DF, F2)], [ch("x/u", None, U)])],
    ),
    case(
        "beta-modified-file-alpha-deleted-dir-beta-has-untracked/two-way-repropagates-synchronizable",
        TWO,
        R(x=DF),
        R(),
        R(x=R(f=F2, u=U)),
        al=[ch("x", None, DF2)],
    ),
    case(
        "replica-removes-beta-extras-but-not-untracked",
        (OWR,),
        R(x=D0),
        R(x=D0),
        R(x=DFU),
        be=[ch("x/f", F, None)],
    ),
    case(
        "replica-beta-only-dir-holding-untracked/conflict",
        (OWR,),
        R(),
        R(),
        R(x=DFU),
        co=[conflict("x", [ch("x", None, None)], [ch("x/u", None, U)])],
    ),
    case(
        "beta-only-dir-holding-untracked/two-way-sends-synchronizable-part",
        TWO,
        R(),
        R(),
        R(x=DFU),
        al=[ch("x", None, DF)],
    ),
    case(
        "beta-only-dir-holding-untracked/one-way-safe-leaves-it",
        (OWS,),
        R(),
        R(),
        R(x=DFU),
    ),
    case(
        "replica-phantom-on-beta-in-the-way/conflict",
        (OWR,),
        R(),
        R(x=F),
        R(x=PH),
        co=[conflict("x", [ch("x", None, F)], [ch("x", None, PH)])],
    ),
    # --- one-way-safe specifics -------------------------------------------------------------
    case(
        "one-way-safe-beta-content-left-after-ancestor-cleared",
        (OWS,),
        R(),
        R(),
        R(x=F2),
    ),
    case(
        "one-way-safe-beta-replaced-alpha-deleted-file-with-dir",
        (OWS,),
        R(x=F),
        R(),
        R(x=DF),
        a=[anc("x", None)],
    ),
    case(
        "one-way-safe-alpha-edits-flow-beside-beta-creations",
        (OWS,),
        R(x=F),
        R(x=F2),
        R(x=F, y=DF),
        be=[ch("x", F, F2)],
    ),
    case(
        "one-way-safe-alpha-untracked-beta-modified",
        (OWS,),
        R(x=F),
        R(x=U),
        R(x=F2),
        a=[anc("x", None)],
    ),
    case(
        "one-way-safe-both-created-dirs-beta-extra-file-kept",
        (OWS,),
        R(),
        R(x=DF),
        R(x=DFG),
        a=[anc("x", D0), anc("x/f", F)],
    ),
    # --- root-level cases -------------------------------------------------------------------
    case("root-created-on-alpha", ALL, None, DF, None, be=[ch("", None, DF)]),
    case("root-created-on-beta/two-way", TWO, None, None, DF, al=[ch("", None, DF)]),
    case("root-created-on-beta/one-way-safe-leaves-it", (OWS,), None, None, DF),
    case("root-created-on-beta/replica-removes-it", (OWR,), None, None, DF, be=[ch("", DF, None)]),
    case("root-both-created-same", ALL, None, DF, DF, a=[anc("", D0), anc("f", F)]),
    case("root-both-created-empty-dirs", ALL, None, D0, D0, a=[anc("", D0)]),
    case(
        "root-both-created-different-files/conflict",
        (SAFE, OWS),
        None,
        F,
        F2,
        co=[conflict("", [ch("", None, F)], [ch("", None, F2)])],
    ),
    case("root-both-created-different-files/alpha-wins", (RESOLVED, OWR), None, F, F2, be=[ch("", F2, F)]),
    case("root-deleted-on-alpha", ALL, DF, None, DF, be=[ch("", DF, None)]),
    case("root-deleted-on-beta/two-way", TWO, DF, DF, None, al=[ch("", DF, None)]),
    case("root-deleted-on-beta/one-way-recreates", (OWS, OWR), DF, DF, None, be=[ch("", None, DF)]),
    case("root-both-deleted", ALL, DF, None, None, a=[anc("", None)]),
    case("root-file-modified-on-alpha", ALL, F, F2, F, be=[ch("", F, F2)]),
    case("root-dir-became-file-on-alpha", ALL, DF, F, DF, be=[ch("", DF, F)]),
    case("root-untracked-on-alpha", ALL, None, U, None),
    case("root-problematic-on-beta", ALL, DF, DF2, P),
    case("root-emptied-on-alpha", ALL, DFG, D0, DFG, be=[ch("f", F, None), ch("g", F2, None)]),
]


def _expand():
    seen = set()
    for c in CASES:
        assert c.name not in seen, f"duplicate case name {c.name}"
        seen.add(c.name)
        for mode in c.modes:
            yield pytest.param(c, mode, id=f"{c.name}[{mode.value}]")


def test_table_has_at_least_100_named_cases():
    assert len(CASES) >= 100


@pytest.mark.parametrize("case,mode", list(_expand()))
def test_reconcile(case: Case, mode: Mode):
    result = reconcile(case.ancestor, case.alpha, case.beta, mode)
    assert result.conflicts == list(case.conflicts)
    assert result.alpha_changes == list(case.alpha_changes)
    assert result.beta_changes == list(case.beta_changes)
    assert result.ancestor_changes == list(case.ancestor_changes)
