"""Ignore matching: which root-relative paths a session leaves alone (pure, no I/O).

Two syntaxes, chosen per session (``IgnoreSyntax``), plus VCS-directory ignoring:

``mutagen`` (default): gitignore-like, with doublestar globbing.
  - ``!p`` negates; the **last matching pattern wins**.
  - a leading ``/`` anchors to the root; a trailing ``/`` restricts to directories;
  - a pattern without ``/`` (besides a trailing one) is matched against the whole path **and**
    against the base name, so ``*.pyc`` or ``node_modules`` match at any depth; a pattern with
    ``/`` is matched against the whole root-relative path;
  - globbing: ``*`` and ``?`` never cross ``/``; ``**`` as a whole component spans any number of
    directories (``a/**`` also matches ``a``); ``**`` inside a component acts as ``*``;
    ``[a-z]``, ``[!x]``/``[^x]`` classes; ``{a,b}`` alternatives (nestable, may contain ``/``);
    ``\\x`` is a literal ``x``;
  - patterns are cleaned like a path (``a//`` -> ``a/``, ``./a`` -> ``a``); whitespace is
    significant;
  - invalid: empty, ``!`` alone, ``/`` and ``//`` (the root), unbalanced ``[``/``{``/``}``, a
    trailing lone ``\\``.
  - content below an ignored directory is ignored too; a negation cannot re-include it.

``docker`` (``.dockerignore``): moby's patternmatcher as Mutagen uses it.
  - patterns are root-relative only (``*.pyc`` matches at the root only), surrounding whitespace
    is trimmed, the pattern is cleaned like a path and a leading ``/`` is dropped; a trailing
    ``/`` does *not* restrict to directories;
  - ``*``/``?`` never cross ``/``; ``**`` spans directories; ``[...]`` classes; braces are
    literal; a backslash anywhere is rejected (portability);
  - last match wins; a path matched by no pattern inherits its parent directory's state, so a
    negation **can** re-include content below an ignored directory. Such directories are
    traversed as phantom directories when an exclusion pattern literally starts with the
    directory's path (``may_reinclude_below``); exclusions with a wildcard before that point do
    not cause traversal (moby's documented limitation, moby/moby#30018, kept for parity).

VCS (``ignore_vcs=True``): directories (only) named ``.git``, ``.svn``, ``.hg``, ``.bzr`` or
``_darcs`` at any depth are ignored, whatever the patterns say.

Why not pathspec as the matcher: the reference semantics are doublestar's and moby's, not git's.
``pathspec.GitIgnoreSpec`` differs in ways that change results (each is a test in
``tests/sync/test_ignore.py::test_pathspec_differences``): no ``{a,b}`` braces; ``a/**`` does not
match ``a`` itself; a pattern also matches every descendant of a matched directory (so
``b`` then ``!/a`` un-ignores ``a/b`` in git but not here); a leading ``#`` is a comment and
trailing spaces are stripped, whereas both are literal here; ``[]`` and ``[!]]`` parse differently.
pathspec stays in the test suite as an oracle on the subset where the two agree. Both syntaxes
compile every pattern to a regular expression and put them in one google-re2 ``Set`` per
question (all matching pattern indices in one pass; the highest wins), falling back to one
``re`` alternation in reverse pattern order when google-re2 is missing. Measured with
``bench/ignore_bench.py`` on a 100k-path tree: ~520k paths/s (mutagen syntax) and ~550k paths/s
(docker) with re2, ~420k/500k with ``re``; pathspec's GitIgnoreSpec does ~650k with re2 and
~210k without, but answers a different (gitignore) question and ignores ancestors.

Paths given to an ``Ignorer`` are root-relative, ``/``-separated, never ``""`` (the root is never
ignored). Ignorers are immutable apart from an internal per-directory cache and can be shared.
"""

from __future__ import annotations

import re
from enum import IntEnum

from .settings import IgnoreSyntax

_re2 = False  # optional accelerator (see _LastMatch): loaded when patterns are first compiled


def _load_re2():
    """The ``re2`` module, or None without google-re2. Imported on first use: it costs ~2.5 MB
    resident in every process importing this module, most of which never compile a pattern."""
    global _re2
    if _re2 is False:
        try:
            import re2
        except ImportError:  # pragma: no cover - depends on the environment
            re2 = None
        _re2 = re2
    return _re2

VCS_DIRECTORIES = (".git", ".svn", ".hg", ".bzr", "_darcs")
_VCS_SET = frozenset(VCS_DIRECTORIES)

# Brace expansion multiplies alternatives; refuse patterns that would explode.
MAXIMUM_BRACE_ALTERNATIVES = 4096
# The per-directory cache is dropped wholesale past this many entries (bounded memory).
_DIRECTORY_CACHE_LIMIT = 1 << 17


class InvalidIgnorePattern(ValueError):
    """A pattern that cannot be used; the message names the pattern and why."""

    def __init__(self, pattern: str, reason: str):
        super().__init__(f"invalid ignore pattern {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason


class IgnoreStatus(IntEnum):
    """What the patterns say about a path by itself (before parent inheritance)."""

    NOMINAL = 0  # no pattern matched
    IGNORED = 1
    UNIGNORED = 2  # matched last by a negated pattern


# --------------------------------------------------------------------------------------------
# Shared helpers


def clean_path(path: str) -> str:
    """Lexical path cleaning with Go's ``path.Clean`` rules (``//a`` -> ``/a``, ``""`` -> ``.``).

    ``posixpath.normpath`` keeps a leading ``//``; Go does not, and patterns must clean the way
    Mutagen's do.
    """
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


class _LastMatch:
    """Which of several regexes, full-matched against a text, is the last one that matches.

    With google-re2 installed this is an ``re2.Set`` (all patterns in one automaton, every
    matching index at once); otherwise one ``re`` alternation in reverse order, where the first
    alternative that matches is the last pattern. ``last(text)`` returns the index into the
    list given at construction, or -1.
    """

    __slots__ = ("_set", "_regex", "_order")

    def __init__(self, regexes: list[str]):
        self._set = None
        # Always compiled: the RE2 set only takes text that encodes as UTF-8, and a scanned name
        # that is not UTF-8 arrives with surrogate escapes.
        order = list(range(len(regexes)))[::-1]
        self._order = [-1] + order
        self._regex = re.compile("(?s)" + "|".join(f"({regexes[k]})" for k in order))
        re2 = _load_re2()
        if re2 is not None:
            try:
                options = re2.Options()
                options.log_errors = False
                options.never_capture = True
                regex_set = re2.Set.FullMatchSet(options)
                for rx in regexes:
                    regex_set.Add("(?s)" + rx)
                regex_set.Compile()
                self._set = regex_set
                return
            except Exception:  # a construct RE2 refuses: use the backtracking engine
                self._set = None

    def last(self, text: str) -> int:
        if self._set is not None:
            try:
                found = self._set.Match(text)
            except UnicodeEncodeError:
                found = None
            else:
                return max(found) if found else -1
        m = self._regex.fullmatch(text)
        return -1 if m is None else self._order[m.lastindex]


def _combine(regexes: list[str]) -> _LastMatch | None:
    return _LastMatch(regexes) if regexes else None


# --------------------------------------------------------------------------------------------
# Doublestar globs (mutagen syntax)


def _doublestar_valid(glob: str) -> bool:
    """doublestar's ValidatePattern: classes closed and non-empty, braces balanced, no dangling \\."""
    depth = 0
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "\\":
            i += 2
            if i > n:
                return False
            continue
        if c == "[":
            i += 1
            if i < n and glob[i] in "^!":
                i += 1
            if i >= n or glob[i] == "]":
                return False
            while i < n and glob[i] != "]":
                i += 2 if glob[i] == "\\" else 1
            if i >= n:
                return False
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return False
            depth -= 1
        i += 1
    return depth == 0


def _skip_class(glob: str, i: int) -> int:
    """Index just past the ``]`` closing the class that starts at ``glob[i] == '['``."""
    i += 1
    if glob[i] in "^!":
        i += 1
    i += 1  # the first member may be anything (validated non-empty)
    if glob[i - 1] == "\\":
        i += 1
    while glob[i] != "]":
        i += 2 if glob[i] == "\\" else 1
    return i + 1


def expand_braces(glob: str) -> list[str]:
    """All brace-free globs that ``{a,b}`` alternatives stand for, in order (validated input)."""
    results = [""]
    i, n = 0, len(glob)
    start = 0
    while i < n:
        c = glob[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = _skip_class(glob, i)
            continue
        if c == "{":
            # Find the matching close and the top-level commas.
            depth, j, commas = 1, i + 1, []
            while depth:
                d = glob[j]
                if d == "\\":
                    j += 2
                    continue
                if d == "[":
                    j = _skip_class(glob, j)
                    continue
                if d == "{":
                    depth += 1
                elif d == "}":
                    depth -= 1
                elif d == "," and depth == 1:
                    commas.append(j)
                j += 1
            close = j - 1
            bounds = [i] + commas + [close]
            options: list[str] = []
            for a, b in zip(bounds, bounds[1:]):
                options.extend(expand_braces(glob[a + 1 : b]))
            prefix = glob[start:i]
            results = [r + prefix + o for r in results for o in options]
            if len(results) > MAXIMUM_BRACE_ALTERNATIVES:
                raise ValueError(f"more than {MAXIMUM_BRACE_ALTERNATIVES} brace alternatives")
            i = close + 1
            start = i
            continue
        i += 1
    tail = glob[start:]
    return [r + tail for r in results]


def _class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[&~|" else c


def _translate_class(glob: str, i: int, leaf: bool = False) -> tuple[str, int]:
    """Regex for the class starting at ``glob[i] == '['`` (doublestar rules), and the next index.

    doublestar matches ranges as ``lo <= c <= hi`` (an inverted range matches nothing) and lets a
    negated class match ``/``; both are kept.
    """
    i += 1
    negate = glob[i] in "^!"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while first or glob[i] != "]":
        first = False
        c = glob[i]
        i += 1
        if c == "\\":
            c = glob[i]
            i += 1
        if glob[i] == "-" and glob[i + 1] != "]":
            i += 1
            hi = glob[i]
            i += 1
            if hi == "\\":
                hi = glob[i]
                i += 1
            if c <= hi:
                items.append(f"{_class_char(c)}-{_class_char(hi)}")
            continue
        items.append(_class_char(c))
    i += 1
    body = "".join(items)
    if negate:
        if leaf:  # a base name never contains '/', so excluding it changes nothing there
            return f"[^{body}/]", i
        return (f"[^{body}]" if body else "."), i
    return (f"[{body}]" if body else r"\b\B"), i


def _doublestar_regex(glob: str, leaf: bool = False) -> str:
    """Regex (to be full-matched) for one brace-free, validated doublestar glob.

    ``leaf``: the glob has no ``/`` and the regex will only meet base names; it is then written
    so that it can never match ``/`` (which lets ``(?:.*/)?`` + it test the base name).
    """
    out: list[str] = []
    i, n = 0, len(glob)
    segment_start = True
    while i < n:
        c = glob[i]
        if c == "*":
            if i + 1 < n and glob[i + 1] == "*":
                i += 2
                if segment_start:
                    if i == n:
                        out.append("[^/]*" if leaf else ".*")
                        continue
                    if glob[i] == "/":
                        out.append("(?:.*/)?")
                        i += 1
                        continue
                out.append("[^/]*")
                segment_start = False
                continue
            out.append("[^/]*")
            i += 1
        elif c == "/" and glob.endswith("/**", i) and i + 3 == n:
            # ``a/**`` matches ``a`` itself as well as everything below it.
            out.append("(?:/.*)?")
            i = n
            continue
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            rx, i = _translate_class(glob, i, leaf)
            out.append(rx)
        elif c == "\\":
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
        segment_start = c == "/"
    return "".join(out)


def doublestar_regex(glob: str, leaf: bool = False) -> str:
    """Regex for a doublestar glob with braces (raises ValueError if the glob is malformed)."""
    if not _doublestar_valid(glob):
        raise ValueError("syntax error in pattern")
    alternatives = [_doublestar_regex(g, leaf) for g in expand_braces(glob)]
    if len(alternatives) == 1:
        return alternatives[0]
    return "(?:" + "|".join(alternatives) + ")"


class _MutagenPattern:
    __slots__ = ("source", "negated", "directory_only", "match_leaf", "regex")

    def __init__(self, source: str):
        self.source = source
        pattern = source
        if pattern == "":
            raise InvalidIgnorePattern(source, "empty pattern")
        self.negated = pattern[0] == "!"
        if self.negated:
            pattern = pattern[1:]
        if pattern == "":
            raise InvalidIgnorePattern(source, "negated empty pattern")
        trailing = len(pattern) > 1 and pattern.endswith("/")
        pattern = clean_path(pattern) + ("/" if trailing else "")
        if pattern == "/":
            raise InvalidIgnorePattern(source, "root pattern")
        if pattern == "//":
            raise InvalidIgnorePattern(source, "root directory pattern")
        absolute = pattern[0] == "/"
        if absolute:
            pattern = pattern[1:]
        self.directory_only = pattern.endswith("/")
        if self.directory_only:
            pattern = pattern[:-1]
        self.match_leaf = not absolute and "/" not in pattern
        try:
            self.regex = doublestar_regex(pattern)
            if self.match_leaf:
                # Whole path, or (any directories, then) the base name.
                self.regex = f"(?:{self.regex})|(?:.*/)?(?:{doublestar_regex(pattern, leaf=True)})"
        except ValueError as error:
            raise InvalidIgnorePattern(source, str(error)) from None


# --------------------------------------------------------------------------------------------
# Docker (moby patternmatcher) globs


def _moby_class(pattern: str, i: int) -> tuple[str, int]:
    """Regex for the class whose ``[`` is just before ``pattern[i]``, and the next index.

    Go's ``filepath.Match`` rules (which Mutagen uses to validate): an optional ``^`` negates,
    members are single characters or ``lo-hi`` ranges, a member may not be ``-`` or ``]``, at
    least one member, and an inverted range is rejected (Go's regexp refuses it).
    """
    n = len(pattern)
    negate = i < n and pattern[i] == "^"
    if negate:
        i += 1
    parts: list[str] = []
    while True:
        if i >= n:
            raise ValueError("syntax error in pattern")
        if pattern[i] == "]" and parts:
            return ("[^" if negate else "[") + "".join(parts) + "]", i + 1
        lo = pattern[i]
        if lo in "-]":
            raise ValueError("syntax error in pattern")
        i += 1
        if i < n and pattern[i] == "-":
            if i + 1 >= n or pattern[i + 1] in "-]":
                raise ValueError("syntax error in pattern")
            hi = pattern[i + 1]
            i += 2
            if lo > hi:
                raise ValueError("syntax error in pattern")
            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
        else:
            parts.append(_class_char(lo))


def _moby_regex(pattern: str) -> str:
    """Regex (full-matched) for a cleaned, backslash-free moby pattern."""
    rest = pattern[2:]
    if pattern.startswith("**") and not any(c in rest for c in "*?[]"):
        # moby's "suffix match": a leading ``**`` followed by literal text is a plain
        # ends-with test (``**foo`` matches ``xfoo``), and ``**/foo`` also matches ``foo``.
        rx = ".*" + re.escape(rest)
        if rest.startswith("/"):
            rx = f"(?:{rx}|{re.escape(rest[1:])})"
        return rx
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i == n else "(?:.*/)?")
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            rx, i = _moby_class(pattern, i)
            out.append(rx)
        else:
            out.append(re.escape(c))
    return "".join(out)


class _DockerPattern:
    __slots__ = ("source", "negated", "cleaned", "regex")

    def __init__(self, source: str):
        self.source = source
        if "\\" in source:
            raise InvalidIgnorePattern(
                source, "escape sequences and backslash-separated paths are not allowed in portable docker patterns"
            )
        pattern = source.strip()
        if pattern == "":
            raise InvalidIgnorePattern(source, "whitespace-only pattern")
        self.negated = pattern[0] == "!"
        if self.negated:
            pattern = pattern[1:].strip()
            if pattern == "":
                raise InvalidIgnorePattern(source, "whitespace-only negated pattern")
        pattern = clean_path(pattern)
        if pattern == "/":
            raise InvalidIgnorePattern(source, "root pattern")
        if pattern[0] == "/":
            pattern = pattern[1:]
        self.cleaned = pattern
        try:
            self.regex = _moby_regex(pattern)
        except ValueError as error:
            raise InvalidIgnorePattern(source, str(error)) from None


# --------------------------------------------------------------------------------------------
# Ignorers


class Ignorer:
    """Answers "is this path ignored?" for one session's compiled patterns.

    ``ignored(path, directory)`` is the effective answer and accounts for ancestors: content
    below an ignored directory is ignored, except that in docker syntax a negation can
    re-include content below an ignored directory the scanner traverses as a phantom
    (``may_reinclude_below``). It is therefore also right for an incremental scan that asks about
    a deep path directly. Directory states are cached, so a walk costs about one regex match
    per path.
    """

    _TRACKED, _PHANTOM, _HIDDEN = 0, 1, 2

    def __init__(self, ignore_vcs: bool):
        self._ignore_vcs = ignore_vcs
        self._directories: dict[str, int] = {}

    def status(self, path: str, directory: bool) -> IgnoreStatus:
        """What the patterns (and VCS ignoring) say about ``path`` alone, without ancestors."""
        return IgnoreStatus(self._own(path, directory))

    def _own(self, path: str, directory: bool) -> int:
        """``status`` as a plain int (the hot path avoids enum construction)."""
        raise NotImplementedError

    def may_reinclude_below(self, path: str) -> bool:
        """True if an ignored directory at ``path`` may hold un-ignored descendants.

        Docker syntax only (the scanner then traverses it as a phantom directory); always False
        for mutagen syntax and for VCS directories.
        """
        return False

    def ignored(self, path: str, directory: bool) -> bool:
        slash = path.rfind("/")
        parent = self._directory_state(path[:slash]) if slash > 0 else self._TRACKED
        if parent == self._HIDDEN:
            return True
        own = self._own(path, directory)
        if own == 0:  # nominal: inherit the parent's state
            return parent == self._PHANTOM
        return own == 1

    def _directory_state(self, path: str) -> int:
        state = self._directories.get(path)
        if state is None:
            if not self.ignored(path, True):
                state = self._TRACKED
            elif self.may_reinclude_below(path):
                state = self._PHANTOM
            else:
                state = self._HIDDEN
            if len(self._directories) >= _DIRECTORY_CACHE_LIMIT:
                self._directories.clear()
            self._directories[path] = state
        return state

    def _vcs(self, path: str, directory: bool) -> bool:
        return self._ignore_vcs and directory and path.rpartition("/")[2] in _VCS_SET


class _MutagenIgnorer(Ignorer):
    def __init__(self, patterns: list[_MutagenPattern], ignore_vcs: bool):
        super().__init__(ignore_vcs)
        self.patterns = patterns
        # One matcher for files, one for directories (directory-only patterns join only the
        # latter), each with the pattern indices it was built from.
        self._tables = {}
        for directory in (False, True):
            eligible = [k for k, p in enumerate(patterns) if directory or not p.directory_only]
            self._tables[directory] = (
                _combine([patterns[k].regex for k in eligible]),
                [patterns[k].negated for k in eligible],
            )

    def _own(self, path: str, directory: bool) -> int:
        if self._ignore_vcs and directory and path.rpartition("/")[2] in _VCS_SET:
            return 1
        matcher, negated = self._tables[directory]
        if matcher is None:
            return 0
        k = matcher.last(path)
        return 0 if k < 0 else 2 if negated[k] else 1


class _DockerIgnorer(Ignorer):
    def __init__(self, patterns: list[_DockerPattern], ignore_vcs: bool):
        super().__init__(ignore_vcs)
        self.patterns = patterns
        self._matcher = _combine([p.regex for p in patterns])
        self._negated = [p.negated for p in patterns]
        # Every component prefix of every exclusion pattern: the directories below which a
        # negation could re-include content (moby compares literally, wildcards included).
        self._reinclusion_prefixes: set[str] = set()
        for p in patterns:
            if p.negated:
                parts = p.cleaned.split("/")
                for end in range(1, len(parts) + 1):
                    self._reinclusion_prefixes.add("/".join(parts[:end]))

    def _own(self, path: str, directory: bool) -> int:
        if self._ignore_vcs and directory and path.rpartition("/")[2] in _VCS_SET:
            return 1
        if self._matcher is None:
            return 0
        k = self._matcher.last(path)
        return 0 if k < 0 else 2 if self._negated[k] else 1

    def may_reinclude_below(self, path: str) -> bool:
        if self._vcs(path, True):
            return False
        return path in self._reinclusion_prefixes


def validate_pattern(pattern: str, syntax: IgnoreSyntax) -> None:
    """Raise InvalidIgnorePattern if ``pattern`` is not valid in ``syntax`` (for CLI checks)."""
    if syntax is IgnoreSyntax.DOCKER:
        _DockerPattern(pattern)
    else:
        _MutagenPattern(pattern)


def compile_ignores(patterns: list[str], syntax: IgnoreSyntax, ignore_vcs: bool) -> Ignorer:
    """Compile a session's ignore patterns (in order; later ones win).

    Raises InvalidIgnorePattern for the first invalid pattern.
    """
    if syntax is IgnoreSyntax.DOCKER:
        return _DockerIgnorer([_DockerPattern(p) for p in patterns], ignore_vcs)
    return _MutagenIgnorer([_MutagenPattern(p) for p in patterns], ignore_vcs)
