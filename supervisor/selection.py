"""Which sessions a command acts on (pure; reference §1.1 "Session selection").

Three mechanisms, exactly one per command: positional specifications (each equal to a
session's identifier or name; one specification may match several sessions), a Kubernetes-style
label selector, or ``--all``. Results are sorted by creation time, oldest first.

Label selectors (``LabelSelector.parse``): comma-separated requirements, all of which must hold:
``k=v`` / ``k==v`` (k present with value v), ``k!=v`` (k absent or another value),
``k in (a,b)``, ``k notin (a,b)`` (k absent or not one of them), ``k`` (present), ``!k``
(absent). Whitespace around tokens is free. An empty selector matches everything.
Malformed selectors raise ValueError naming the selector and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence, TypeVar

from .identity import validate_label_key, validate_label_value

NO_SELECTION = "no selection mechanisms present"
MULTIPLE_SELECTIONS = "multiple selection mechanisms present"


class Selectable(Protocol):
    """What selection needs of a session (``labels`` may be absent, meaning none)."""

    id: str
    name: str
    created: float


S = TypeVar("S", bound=Selectable)

OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of OPERATORS ("exists" for a bare key, "!" for !key)
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "==", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin


_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|[^\s!=(),]+)")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:  # pragma: no cover - the token pattern accepts every non-space char
            raise ValueError(f"invalid label selector {text!r}: unexpected character at {position}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> "LabelSelector":
        tokens = _tokenize(text)
        requirements: list[Requirement] = []
        index = 0

        def fail(expected: str) -> ValueError:
            found = repr(tokens[index]) if index < len(tokens) else "the end"
            return ValueError(f"invalid label selector {text!r}: expected {expected}, found {found}")

        def take_identifier(what: str) -> str:
            nonlocal index
            if index >= len(tokens) or tokens[index] in ("=", "==", "!=", "!", "(", ")", ","):
                raise fail(what)
            index += 1
            return tokens[index - 1]

        def check(key: str, values: Iterable[str]) -> None:
            try:
                validate_label_key(key)
                for value in values:
                    validate_label_value(value, key)
            except ValueError as error:
                raise ValueError(f"invalid label selector {text!r}: {error}") from None

        while index < len(tokens):
            if tokens[index] == "!":
                index += 1
                key = take_identifier("a label key after '!'")
                check(key, ())
                requirements.append(Requirement(key, "!"))
            else:
                key = take_identifier("a label key")
                if index >= len(tokens) or tokens[index] == ",":
                    check(key, ())
                    requirements.append(Requirement(key, "exists"))
                elif tokens[index] in ("=", "==", "!="):
                    operator = tokens[index]
                    index += 1
                    if index < len(tokens) and tokens[index] not in ("=", "==", "!=", "!", "(", ")", ","):
                        value = tokens[index]
                        index += 1
                    else:
                        value = ""  # k8s allows an empty value: "k=" means the label is empty
                    check(key, (value,))
                    requirements.append(Requirement(key, operator, frozenset((value,))))
                elif tokens[index] in ("in", "notin"):
                    operator = tokens[index]
                    index += 1
                    if index >= len(tokens) or tokens[index] != "(":
                        raise fail(f"'(' after '{operator}'")
                    index += 1
                    values: list[str] = []
                    while True:
                        if index < len(tokens) and tokens[index] not in ("=", "==", "!=", "!", "(", ")", ","):
                            values.append(tokens[index])
                            index += 1
                        else:
                            values.append("")
                        if index < len(tokens) and tokens[index] == ",":
                            index += 1
                            continue
                        if index < len(tokens) and tokens[index] == ")":
                            index += 1
                            break
                        raise fail("',' or ')' in a value list")
                    if values == [""]:
                        raise ValueError(f"invalid label selector {text!r}: '{operator}' needs at least one value")
                    check(key, values)
                    requirements.append(Requirement(key, operator, frozenset(values)))
                else:
                    raise fail("an operator (=, ==, !=, in, notin) or ','")
            if index < len(tokens):
                if tokens[index] != ",":
                    raise fail("','")
                index += 1
                if index >= len(tokens):
                    raise fail("a requirement after ','")
        return cls(tuple(requirements))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _labels(session: Selectable) -> Mapping[str, str]:
    return getattr(session, "labels", None) or {}


def select(
    sessions: Iterable[S],
    specifications: Sequence[str],
    label_selector: str,
    all_: bool,
    *,
    default_all: bool = False,
) -> list[S]:
    """The sessions a command acts on, oldest first.

    ``default_all``: with no mechanism given, select everything (``list`` and ``monitor``);
    otherwise that is the error "no selection mechanisms present". Raises ValueError with
    Mutagen's texts: "multiple selection mechanisms present",
    'specification "X" did not match any sessions', or a malformed selector's message.
    """
    sessions = list(sessions)
    mechanisms = int(bool(all_)) + int(bool(specifications)) + int(bool(label_selector))
    if mechanisms > 1:
        raise ValueError(MULTIPLE_SELECTIONS)
    if mechanisms == 0:
        if not default_all:
            raise ValueError(NO_SELECTION)
        all_ = True
    if all_:
        chosen = sessions
    elif specifications:
        chosen_ids: set[str] = set()
        chosen = []
        for specification in specifications:
            matched = [s for s in sessions if specification in (s.id, s.name)]
            if not matched:
                raise ValueError(f'specification "{specification}" did not match any sessions')
            for session in matched:
                if session.id not in chosen_ids:
                    chosen_ids.add(session.id)
                    chosen.append(session)
    else:
        selector = LabelSelector.parse(label_selector)
        chosen = [s for s in sessions if selector.matches(_labels(s))]
    return sorted(chosen, key=lambda s: (s.created, s.id))
