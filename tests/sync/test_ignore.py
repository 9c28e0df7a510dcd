"""Ignore matching, both syntaxes (reference §4), as tables of what a user would see ignored."""

from __future__ import annotations

import pathspec
import pytest

from mutagen_actors.actors.sync import ignore
from mutagen_actors.actors.sync.ignore import (
    VCS_DIRECTORIES,
    IgnoreStatus,
    InvalidIgnorePattern,
    clean_path,
    compile_ignores,
    expand_braces,
    validate_pattern,
)
from mutagen_actors.actors.sync.settings import IgnoreSyntax

MUTAGEN = IgnoreSyntax.MUTAGEN
DOCKER = IgnoreSyntax.DOCKER
D, F = True, False  # directory / file


@pytest.fixture(params=["re2", "re"], autouse=True)
def engine(request, monkeypatch):
    """Every test runs with both regex engines (google-re2 sets and the stdlib fallback)."""
    if request.param == "re":
        monkeypatch.setattr(ignore, "_re2", None)
    elif ignore._load_re2() is None:
        pytest.fail("google-re2 is a dependency and must be installed")
    return request.param


# (patterns, path, directory, ignored)
MUTAGEN_TABLE = [
    # base names at any depth
    (["*.pyc"], "a.pyc", F, True),
    (["*.pyc"], "x/y/a.pyc", F, True),
    (["*.pyc"], "a.py", F, False),
    (["*.pyc"], "a.pyc", D, True),
    (["node_modules"], "node_modules", D, True),
    (["node_modules"], "web/node_modules", D, True),
    (["node_modules"], "web/node_modules/left-pad/index.js", F, True),  # below an ignored dir
    (["node_modules"], "node_modules_old", D, False),
    (["a?c"], "abc", F, True),
    (["a?c"], "x/abc", F, True),
    (["a?c"], "ac", F, False),
    # anchoring
    (["/build"], "build", D, True),
    (["/build"], "src/build", D, False),
    (["/build"], "build/out.o", F, True),
    (["some/*"], "some/path", F, True),
    (["some/*"], "x/some/path", F, False),  # a pattern with '/' is root-relative
    (["some/*"], "some/a/b", F, True),  # below the ignored some/a
    (["some/*"], "some", D, False),
    # directory-only
    (["cache/"], "cache", D, True),
    (["cache/"], "cache", F, False),
    (["cache/"], "deep/cache", D, True),
    (["/cache/"], "deep/cache", D, False),
    (["a//"], "a", D, True),  # cleaned to a/
    (["a//"], "a", F, False),
    # negation, last match wins
    (["*.log", "!keep.log"], "keep.log", F, False),
    (["*.log", "!keep.log"], "sub/keep.log", F, False),
    (["*.log", "!keep.log"], "other.log", F, True),
    (["!keep.log", "*.log"], "keep.log", F, True),
    (["something", "otherthing", "!something"], "something", F, False),
    (["something", "otherthing", "!something"], "otherthing", F, True),
    (["*", "!*.c"], "main.c", F, False),
    (["*", "!*.c", "x.c"], "x.c", F, True),
    # no re-inclusion below an ignored directory
    (["build/", "!build/keep"], "build/keep", F, True),
    (["build", "!build/keep"], "build/keep", F, True),
    (["b", "!/a"], "a/b", F, True),  # git would un-ignore a/b here (see differences)
    (["/a", "!/a/b"], "a/b", F, True),
    (["a/*", "!a/b"], "a/b", D, False),  # a itself is not ignored, so b can be
    (["a/*", "!a/b"], "a/b/c", F, False),
    (["a/*", "!a/b"], "a/c", F, True),
    # doublestar
    (["**/tmp"], "tmp", D, True),
    (["**/tmp"], "a/b/tmp", D, True),
    (["a/**/b"], "a/b", F, True),
    (["a/**/b"], "a/x/y/b", F, True),
    (["a/**/b"], "a/x/c", F, False),
    (["a/**"], "a", D, True),  # doublestar: a/** matches a itself
    (["a/**"], "a/x/y", F, True),
    (["a/**"], "ab", F, False),
    (["a**b"], "axxb", F, True),  # ** inside a component is *
    (["a**b"], "a/b", F, False),
    (["**"], "anything/at/all", F, True),
    (["some/**/*"], "some/other/path", F, True),
    # braces
    (["*.{jpg,png}"], "x/pic.png", F, True),
    (["*.{jpg,png}"], "x/pic.gif", F, False),
    (["{dist,out}/"], "dist", D, True),
    (["{dist,out}/"], "src/out", D, True),
    (["{a/b,c}"], "a/b", F, True),
    (["{a/b,c}"], "x/c", F, False),  # a '/' inside braces makes it root-relative
    (["{a/b,c}"], "c", F, True),
    (["x{1,{2,3}}"], "x3", F, True),
    (["x{1,{2,3}}"], "x4", F, False),
    # classes and escapes
    (["*.sw[op]"], "a.swp", F, True),
    (["*.sw[op]"], "a.swx", F, False),
    (["[!a]bc"], "abc", F, False),
    (["[!a]bc"], "xbc", F, True),
    (["[^a]bc"], "xbc", F, True),
    (["[a-c]x"], "bx", F, True),
    (["[a-c]x"], "dx", F, False),
    (["[c-a]x"], "bx", F, False),  # an inverted range matches nothing
    (["\\*star"], "*star", F, True),
    (["\\*star"], "xstar", F, False),
    (["a\\{b\\}"], "a{b}", F, True),
    # literal characters that are special elsewhere
    (["#notes"], "#notes", F, True),  # not a comment
    (["trailing "], "trailing ", F, True),  # whitespace is significant
    (["trailing "], "trailing", F, False),
    (["a+b(c)"], "a+b(c)", F, True),
    (["./rel"], "rel", F, True),  # cleaned
    (["é*"], "dir/été", F, True),
    # unicode and odd names
    (["*.tmp"], "dir.tmp/file", F, True),
    (["*.tmp"], "a\nb.tmp", F, True),
]


@pytest.mark.parametrize("patterns, path, directory, expected", MUTAGEN_TABLE)
def test_mutagen_syntax(patterns, path, directory, expected):
    assert compile_ignores(patterns, MUTAGEN, False).ignored(path, directory) is expected


DOCKER_TABLE = [
    # root-relative only
    (["*.pyc"], "a.pyc", F, True),
    (["*.pyc"], "sub/a.pyc", F, False),
    (["**/*.pyc"], "sub/deep/a.pyc", F, True),
    (["**/*.pyc"], "a.pyc", F, True),
    (["node_modules"], "node_modules", D, True),
    (["node_modules"], "web/node_modules", D, False),
    (["node_modules"], "node_modules/x/y.js", F, True),  # inherited from the directory
    # leading slash stripped, trailing slash not dir-only, whitespace trimmed
    (["/build"], "build", D, True),
    (["build/"], "build", F, True),
    (["  build  "], "build", D, True),
    (["\tlogs\t"], "logs", F, True),
    (["./out"], "out", D, True),
    (["a/../b"], "b", F, True),
    # wildcards
    (["some/*"], "some/path", F, True),
    (["some/*"], "some", D, False),
    (["some/**"], "some", D, False),  # moby: a/** is a prefix match on "a/"
    (["some/**"], "some/a/b", F, True),
    (["a?c"], "abc", F, True),
    (["a*"], "a/b", F, True),  # a matches, so a/b inherits
    (["**"], "x/y", F, True),
    (["**foo"], "xfoo", F, True),  # moby suffix match
    (["**foo"], "a/bfoo", F, True),
    (["**/foo"], "foo", D, True),
    (["**/foo"], "a/foo", D, True),
    (["**/foo"], "afoo", D, False),
    (["a/**/b"], "a/b", F, True),
    (["a/**/b"], "a/x/y/b", F, True),
    (["*.py[cod]"], "run.pyc", F, True),
    (["*.py[cod]"], "run.py", F, False),
    (["[^a]x"], "bx", F, True),
    (["[^a]x"], "ax", F, False),
    (["[!a]x"], "!x", F, True),  # Go classes: '!' is not negation
    (["[!a]x"], "bx", F, False),
    (["{a,b}"], "{a,b}", F, True),  # braces are literal
    (["{a,b}"], "a", F, False),
    (["a]b"], "a]b", F, True),
    (["a.b"], "axb", F, False),
    # negation and re-inclusion below ignored directories
    (["*.log", "!keep.log"], "keep.log", F, False),
    (["!keep.log", "*.log"], "keep.log", F, True),
    (["ignored", "!ignored/subpath"], "ignored/subpath", F, False),
    (["ignored", "!ignored/subpath"], "ignored/subpath", D, False),
    (["ignored", "!ignored/subpath"], "ignored/subpath/deep", F, False),
    (["ignored", "!ignored/subpath"], "ignored/other", F, True),
    (["ignored", "!ignored/a/b"], "ignored/a", D, True),  # a phantom on the way to a/b
    (["ignored", "!ignored/a/b"], "ignored/a/b", F, False),
    (["ignored", "!ignored/a/b"], "ignored/a/c", F, True),
    (["vendor", "!vendor/keep", "vendor/keep/tmp"], "vendor/keep/tmp", F, True),
    (["vendor", "!vendor/keep", "vendor/keep/tmp"], "vendor/keep/src.go", F, False),
    (["/abspath", "/name", "!*/**/name"], "name", F, True),
    (["/abspath", "/name", "!*/**/name"], "sub/name", F, False),
    (["some/*", "some/**/*", "!some/other"], "some/other", F, False),
    (["some/*", "some/**/*", "!some/other"], "some/other/path", F, True),
    (["some/*", "some/**/*", "!some/other"], "subdir/some/other/path", F, False),
    # a wildcard exclusion under a directory that is not traversed never applies (moby #30018)
    (["cache", "!**/keep"], "cache/keep", F, True),
    (["cache", "!**/keep"], "keep", F, False),
    (["*", "!src"], "src/main.c", F, False),
    (["*", "!src"], "docs/index.md", F, True),
]


@pytest.mark.parametrize("patterns, path, directory, expected", DOCKER_TABLE)
def test_docker_syntax(patterns, path, directory, expected):
    assert compile_ignores(patterns, DOCKER, False).ignored(path, directory) is expected


# (patterns, path, expected may_reinclude_below)
REINCLUSION = [
    (["ignored", "!ignored/subpath"], "ignored", True),
    (["ignored", "!ignored/subpath"], "ignored/subpath", True),
    (["ignored", "!ignored/subpath2/content"], "ignored/subpath2", True),
    (["ignored", "!ignored/subpath"], "other", False),
    (["ignored", "!ignored/subpath"], "ignore", False),  # component-wise prefix, not string
    (["ignored", "!ignored/subpath"], "ignored/sub", False),
    (["ignored"], "ignored", False),
    (["cache", "!**/keep"], "cache", False),
    (["*", "!src/main.c"], "src", True),
]


@pytest.mark.parametrize("patterns, path, expected", REINCLUSION)
def test_docker_may_reinclude_below(patterns, path, expected):
    assert compile_ignores(patterns, DOCKER, False).may_reinclude_below(path) is expected


@pytest.mark.parametrize("patterns", [["ignored", "!ignored/keep"], ["*.pyc", "!x.pyc"], ["a/**/b", "!c"]])
@pytest.mark.parametrize("path", ["ignored", "a", "a/b", "c"])
def test_mutagen_syntax_never_reincludes_below(patterns, path):
    assert compile_ignores(patterns, MUTAGEN, False).may_reinclude_below(path) is False


@pytest.mark.parametrize(
    "patterns, path, directory, expected",
    [
        # Mutagen's own status expectations (no parent inheritance in status)
        (["something", "otherthing", "!something", "somedir/"], "something", D, IgnoreStatus.UNIGNORED),
        (["something", "otherthing", "!something", "somedir/"], "otherthing", F, IgnoreStatus.IGNORED),
        (["something", "otherthing", "!something", "somedir/"], "somedir", F, IgnoreStatus.NOMINAL),
        (["something", "otherthing", "!something", "somedir/"], "sub/somedir", D, IgnoreStatus.IGNORED),
        (["build"], "build/x", F, IgnoreStatus.NOMINAL),
        (["random"], "other", F, IgnoreStatus.NOMINAL),
    ],
)
def test_mutagen_status_of_the_path_alone(patterns, path, directory, expected):
    assert compile_ignores(patterns, MUTAGEN, False).status(path, directory) is expected


@pytest.mark.parametrize("syntax", [MUTAGEN, DOCKER])
@pytest.mark.parametrize("name", VCS_DIRECTORIES)
def test_vcs_directories_are_ignored_only_as_directories(syntax, name):
    on = compile_ignores([], syntax, True)
    off = compile_ignores([], syntax, False)
    assert on.ignored(name, True) and on.ignored(f"deep/er/{name}", True)
    assert on.ignored(f"{name}/config", False)
    assert not on.ignored(name, False)  # a file named .git is synchronized
    assert not off.ignored(name, True)


@pytest.mark.parametrize("syntax, patterns", [(MUTAGEN, ["!.git/", "!.git"]), (DOCKER, ["!.git", "!.git/config"])])
def test_vcs_ignoring_cannot_be_negated(syntax, patterns):
    ignorer = compile_ignores(patterns, syntax, True)
    assert ignorer.ignored(".git", True)
    assert ignorer.ignored(".git/config", False)
    assert not ignorer.may_reinclude_below(".git")


# (syntax, pattern, message fragment)
INVALID = [
    (MUTAGEN, "", "invalid ignore pattern '': empty pattern"),
    (MUTAGEN, "!", "invalid ignore pattern '!': negated empty pattern"),
    (MUTAGEN, "/", "invalid ignore pattern '/': root pattern"),
    (MUTAGEN, "!/", "invalid ignore pattern '!/': root pattern"),
    (MUTAGEN, "//", "invalid ignore pattern '//': root directory pattern"),
    (MUTAGEN, "///", "invalid ignore pattern '///': root directory pattern"),
    (MUTAGEN, "/.", "invalid ignore pattern '/.': root pattern"),
    (MUTAGEN, "\\", "invalid ignore pattern '\\\\': syntax error in pattern"),
    (MUTAGEN, "a[", "syntax error in pattern"),
    (MUTAGEN, "a[]", "syntax error in pattern"),
    (MUTAGEN, "[!]", "syntax error in pattern"),
    (MUTAGEN, "[]]", "syntax error in pattern"),  # doublestar: empty class (git: matches "]")
    (MUTAGEN, "a\\{b}", "syntax error in pattern"),
    (MUTAGEN, "{a,b", "syntax error in pattern"),
    (MUTAGEN, "a}", "syntax error in pattern"),
    (MUTAGEN, "x\\", "syntax error in pattern"),
    (MUTAGEN, "{a,b}" * 13, "brace alternatives"),
    (DOCKER, "", "invalid ignore pattern '': whitespace-only pattern"),
    (DOCKER, " \t ", "whitespace-only pattern"),
    (DOCKER, "!", "whitespace-only negated pattern"),
    (DOCKER, "! ", "whitespace-only negated pattern"),
    (DOCKER, "/", "invalid ignore pattern '/': root pattern"),
    (DOCKER, "//", "root pattern"),
    (DOCKER, "!///", "root pattern"),
    (DOCKER, "a\\b", "backslash"),
    (DOCKER, "\\", "backslash"),
    (DOCKER, "a[", "syntax error in pattern"),
    (DOCKER, "[]a]", "syntax error in pattern"),
    (DOCKER, "[a-]", "syntax error in pattern"),
    (DOCKER, "[-a]", "syntax error in pattern"),
    (DOCKER, "[z-a]", "syntax error in pattern"),
]


@pytest.mark.parametrize("syntax, pattern, message", INVALID)
def test_invalid_patterns_are_rejected_with_a_message_naming_them(syntax, pattern, message):
    with pytest.raises(InvalidIgnorePattern) as caught:
        compile_ignores(["fine", pattern], syntax, False)
    assert message in str(caught.value)
    assert caught.value.pattern == pattern
    with pytest.raises(ValueError):
        validate_pattern(pattern, syntax)


@pytest.mark.parametrize(
    "syntax, pattern",
    [(MUTAGEN, p) for p in ["some pattern", "a/b/", "!x", "**", "{a,}", "[a]]", "a\\[", ".", "ü/*"]]
    + [(DOCKER, p) for p in ["some pattern", "/some/pattern/", "!x", "**", "{", "[^a]", "a]", "."]],
)
def test_valid_patterns(syntax, pattern):
    validate_pattern(pattern, syntax)


@pytest.mark.parametrize(
    "path, cleaned",
    [("", "."), ("a//b", "a/b"), ("//a", "/a"), ("./a/", "a"), ("a/../..", ".."), ("/..", "/"), ("a/./b/.", "a/b")],
)
def test_clean_path_follows_go(path, cleaned):
    assert clean_path(path) == cleaned


@pytest.mark.parametrize(
    "glob, expanded",
    [
        ("a", ["a"]),
        ("{a,b}", ["a", "b"]),
        ("x{a,b}y{1,2}", ["xay1", "xay2", "xby1", "xby2"]),
        ("{a,{b,c}}", ["a", "b", "c"]),
        ("{a,}", ["a", ""]),
        ("\\{a,b}", ["\\{a,b}"]),
        ("[{]{a,b}", ["[{]a", "[{]b"]),
    ],
)
def test_brace_expansion(glob, expanded):
    assert expand_braces(glob) == expanded


# Where pathspec's gitignore semantics differ from the reference: (patterns, path, directory,
# what git/pathspec says, what we say). Each row is a reason pathspec is not the matcher.
PATHSPEC_DIFFERENCES = [
    (["*.{jpg,png}"], "a.png", F, False, True),  # no brace support in gitignore
    (["a/**"], "a", F, False, True),  # doublestar: a/** matches a
    (["a/", "!a/b"], "a/b", F, False, True),  # per-path matching re-includes below an ignored dir
    (["*", "!*.c"], "d/x.c", F, False, True),  # ... and does not see that d itself is ignored
    (["#notes"], "#notes", F, False, True),  # git: a comment
    (["trailing "], "trailing ", F, False, True),  # git: trailing spaces stripped
]


@pytest.mark.parametrize("patterns, path, directory, git, ours", PATHSPEC_DIFFERENCES)
def test_pathspec_differences(patterns, path, directory, git, ours):
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    assert spec.match_file(path + "/" if directory else path) is git
    assert compile_ignores(patterns, MUTAGEN, False).ignored(path, directory) is ours


ORACLE_PATTERNS = [
    ["*.pyc", "!keep.pyc"],
    ["build/", "/dist", "*.log"],
    ["a/*/c", "**/tmp", "!x/tmp"],
    ["*.sw[op]", "[!a]bc"],
    ["docs/**/*.md", "!docs/keep/*.md"],
]
ORACLE_PATHS = [
    ("a.pyc", F), ("x/keep.pyc", F), ("x/y.pyc", F), ("build", D), ("build", F), ("src/build", D),
    ("dist", D), ("src/dist", D), ("a/b/c", F), ("a/b/d", F), ("tmp", D), ("x/tmp", D), ("y/tmp", D),
    ("f.swp", F), ("xbc", F), ("abc", F), ("docs/a/b.md", F), ("docs/keep/b.md", F), ("docs/x.md", F),
    ("s.log", F), ("d/s.log", F),
]


@pytest.mark.parametrize("patterns", ORACLE_PATTERNS)
def test_agrees_with_pathspec_where_the_semantics_coincide(patterns):
    """On patterns without braces, comments or trailing '/**', and on paths whose ancestors are
    not ignored (the scanner never looks below an ignored directory), git and Mutagen agree."""
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    ours = compile_ignores(patterns, MUTAGEN, False)
    checked = 0
    for path, directory in ORACLE_PATHS:
        parts = path.split("/")
        if any(ours.ignored("/".join(parts[:k]), True) for k in range(1, len(parts))):
            continue
        assert ours.ignored(path, directory) is spec.match_file(path + "/" if directory else path), path
        checked += 1
    assert checked > 10


def test_cached_directory_answers_stay_consistent():
    ignorer = compile_ignores(["ignored", "!ignored/keep"], DOCKER, False)
    first = [ignorer.ignored(p, d) for p, d in [("ignored", D), ("ignored/keep", D), ("ignored/keep/f", F)]]
    second = [ignorer.ignored(p, d) for p, d in [("ignored", D), ("ignored/keep", D), ("ignored/keep/f", F)]]
    assert first == second == [True, False, False]


# ---------------------------------------------------------------------------------------------
# Properties: the regex translation agrees with a direct, slow reading of doublestar's rules.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _class_match(glob: str, char: str) -> tuple[bool, int]:
    """(matches, length of the class text) for the class at the start of ``glob``."""
    i = 1
    negate = glob[i] in "!^"
    i += negate
    found = False
    first = True
    while first or glob[i] != "]":
        first = False
        lo = glob[i]
        i += 1
        if lo == "\\":
            lo = glob[i]
            i += 1
        hi = lo
        if glob[i] == "-" and glob[i + 1] != "]":
            hi = glob[i + 1]
            i += 2
            if hi == "\\":
                hi = glob[i]
                i += 1
        if lo <= char <= hi:
            found = True
    return found != negate, i + 1


def reference_match(glob: str, name: str, segment_start: bool = True) -> bool:
    """doublestar semantics for a brace-free glob, by plain recursion (exponential, tiny inputs)."""
    if glob == "":
        return name == ""
    if name == "" and glob in ("*", "**", "/**"):
        return True
    if glob.startswith("**") and segment_start:
        rest = glob[2:]
        if rest == "":
            return True
        if rest[0] == "/":
            starts = [0] + [i + 1 for i, c in enumerate(name) if c == "/"]
            return any(reference_match(rest[1:], name[i:], True) for i in starts)
    if glob[0] == "*":
        rest = glob.lstrip("*")
        for i in range(len(name) + 1):
            if reference_match(rest, name[i:], False):
                return True
            if i < len(name) and name[i] == "/":
                break
        return False
    if name == "":
        return False
    if glob[0] == "?":
        return name[0] != "/" and reference_match(glob[1:], name[1:], False)
    if glob[0] == "[":
        ok, length = _class_match(glob, name[0])
        return ok and reference_match(glob[length:], name[1:], False)
    if glob[0] == "\\":
        return name[0] == glob[1] and reference_match(glob[2:], name[1:], False)
    return name[0] == glob[0] and reference_match(glob[1:], name[1:], glob[0] == "/")


GLOB_PIECES = ["a", "b", ".", "/", "*", "**", "?", "[a]", "[!a]", "[^b]", "[a-b]", "[b-a]", "\\*", "\\[", "{a,b}", "{a/b,}", "-"]
globs = st.lists(st.sampled_from(GLOB_PIECES), min_size=1, max_size=6).map("".join)
names = st.lists(st.sampled_from(["a", "b", "ab", ".", "*", "[", "-", "a.b"]), min_size=1, max_size=4).map("/".join)


@settings(max_examples=300, deadline=None)
@given(glob=globs, name=names)
def test_translation_matches_doublestar_rules(glob, name):
    import re

    expected = any(reference_match(g, name) for g in expand_braces(glob))
    assert (re.fullmatch("(?s)" + ignore.doublestar_regex(glob), name) is not None) is expected


@settings(max_examples=100, deadline=None)
@given(patterns=st.lists(globs.map(lambda g: g.lstrip("/") or "a"), min_size=1, max_size=5),
       negations=st.lists(st.booleans(), min_size=5, max_size=5),
       name=names, directory=st.booleans(), syntax=st.sampled_from([MUTAGEN, DOCKER]))
def test_re2_and_re_engines_agree(patterns, negations, name, directory, syntax):
    patterns = [("!" if negated else "") + p for p, negated in zip(patterns, negations)]
    patterns = [p for p in patterns if not (syntax is DOCKER and "\\" in p)]
    try:
        with_re2 = compile_ignores(patterns, syntax, True)
    except InvalidIgnorePattern:
        return
    saved, ignore._re2 = ignore._re2, None
    try:
        with_re = compile_ignores(patterns, syntax, True)
    finally:
        ignore._re2 = saved
    assert with_re2.status(name, directory) == with_re.status(name, directory)
    assert with_re2.ignored(name, directory) == with_re.ignored(name, directory)


@pytest.mark.parametrize("syntax, patterns", [(MUTAGEN, ["*.pyc", "!x*"]), (DOCKER, ["*.pyc", "!x*"])])
def test_names_that_are_not_utf8_do_not_break_matching(syntax, patterns):
    ignorer = compile_ignores(patterns, syntax, False)
    assert ignorer.ignored("bad\udcffname.pyc", False) is True
    assert ignorer.ignored("x\udcff", False) is False
