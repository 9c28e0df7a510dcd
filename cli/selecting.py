"""The ``SESSIONS... [-a/--all] [--label-selector]`` selection of session commands, validated
(shared by ``sync`` and ``forward`` commands; kept apart from ``sync_arguments`` so that ``list``,
``flush`` and the like do not load the configuration and ignore machinery).

``selection(...)`` returns a ``Selection`` message or raises ``ArgumentError`` (a ValueError whose
``str()`` is Mutagen's one-line text or the label selector's problem).
"""

from __future__ import annotations

from typing import Optional

from mutagen_actors.wire.messages.sync import Selection


class ArgumentError(ValueError):
    """Bad input to a ``sync`` command; ``str()`` is the one line shown to the user."""


def selection(specifications: tuple[str, ...] | list[str], label_selector: Optional[str],
              all_: bool, *, default_all: bool = False) -> Selection:
    """A validated selection: exactly one mechanism (``default_all``: none means all, for
    ``list``/``monitor``). Raises ArgumentError with Mutagen's texts or the selector's problem."""
    label_selector = label_selector or ""
    mechanisms = int(bool(all_)) + int(bool(specifications)) + int(bool(label_selector))
    if (mechanisms == 1 and not label_selector) or (mechanisms == 0 and default_all):
        return _selection(specifications, label_selector, all_, mechanisms)
    # Only now the selection module (its parser and the look-ups it imports; a plain command
    # does not pay for them at start-up).
    from mutagen_actors.supervisor.selection import (
        MULTIPLE_SELECTIONS,
        NO_SELECTION,
        LabelSelector,
    )

    if mechanisms > 1:
        raise ArgumentError(MULTIPLE_SELECTIONS)
    if mechanisms == 0 and not default_all:
        raise ArgumentError(NO_SELECTION)
    if label_selector:
        try:
            LabelSelector.parse(label_selector)
        except ValueError as error:
            raise ArgumentError(f"--label-selector: {error}") from None
    return _selection(specifications, label_selector, all_, mechanisms)


def _selection(specifications, label_selector: str, all_: bool, mechanisms: int) -> Selection:
    return Selection(specifications=list(specifications), label_selector=label_selector,
                     all=bool(all_) or mechanisms == 0)
