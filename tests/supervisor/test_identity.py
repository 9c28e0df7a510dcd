"""Identifiers, session names and labels (reference §1.1 and §9)."""

from __future__ import annotations

import pytest

from mutagen_actors.supervisor.identity import (
    ENCODED_LENGTH,
    encode_base62,
    is_identifier,
    new_identifier,
    parse_labels,
    validate_name,
)


@pytest.mark.parametrize("prefix", ["sync", "fwrd", "proj", "pmtr"])
def test_new_identifiers_have_the_prefix_and_43_base62_characters(prefix):
    identifiers = {new_identifier(prefix) for _ in range(200)}
    assert len(identifiers) == 200
    for identifier in identifiers:
        head, _, body = identifier.partition("_")
        assert head == prefix and len(body) == ENCODED_LENGTH and body.isalnum() and body.isascii()
        assert is_identifier(identifier) and is_identifier(identifier, prefix)


def test_unknown_prefix_is_refused():
    with pytest.raises(ValueError, match="invalid identifier prefix 'sess'"):
        new_identifier("sess")


@pytest.mark.parametrize(
    "data, encoded",
    [
        (bytes(32), "0" * 43),
        (bytes(31) + b"\x01", "0" * 42 + "1"),
        (bytes(31) + b"\x3d", "0" * 42 + "Z"),
        (bytes(31) + b"\x3e", "0" * 41 + "10"),
        (b"\xff" * 32, "YHJSKWDa6oz1al1yMhwzwM8llg7hJNUca2J5RoW8xP1"),
    ],
)
def test_base62_encoding_is_left_padded(data, encoded):
    assert encode_base62(data) == encoded


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sync_" + "a" * 43, True),
        ("fwrd_" + "Z9" * 21 + "x", True),
        ("sync_" + "a" * 42, False),
        ("sync_" + "a" * 44, False),
        ("sync_" + "a" * 42 + "-", False),
        ("syn_" + "a" * 43, False),
        ("123e4567-e89b-12d3-a456-426614174000", True),  # legacy UUID
        ("123e4567e89b12d3a456426614174000", True),
        ("web", False),
        ("", False),
    ],
)
def test_is_identifier(text, expected):
    assert is_identifier(text) is expected


@pytest.mark.parametrize("name", ["", "web", "Web-1", "a", "émile", "日本語", "x-y-z", "abc123", "db--2", "Defaults"])
def test_valid_names(name):
    validate_name(name)


@pytest.mark.parametrize(
    "name, message",
    [
        ("1web", "must start with a letter"),
        ("-web", "must start with a letter"),
        ("_web", "must start with a letter"),
        ("web_1", "only letters, digits and '-'"),
        ("web 1", "only letters, digits and '-'"),
        ("web.1", "only letters, digits and '-'"),
        ("web/1", "only letters, digits and '-'"),
        ("defaults", "'defaults' is reserved"),
        ("deadbeef-e89b-12d3-a456-426614174000", "may not be a UUID"),
        ("deadbeefe89b12d3a456426614174000", "may not be a UUID"),
    ],
)
def test_invalid_names_are_named_in_the_message(name, message):
    with pytest.raises(ValueError) as caught:
        validate_name(name)
    assert f"invalid session name {name!r}" in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "values, labels",
    [
        ([], {}),
        (["env=dev"], {"env": "dev"}),
        (["env"], {"env": ""}),
        (["env="], {"env": ""}),
        (["a=1,b=2"], {"a": "1", "b": "2"}),
        (["a=1", "a=2"], {"a": "2"}),
        (["example.com/team=core"], {"example.com/team": "core"}),
        (["io.mutagen.project=proj_x"], {"io.mutagen.project": "proj_x"}),
        (["k=" + "v" * 63], {"k": "v" * 63}),
        (["A.b-c_d=E.f-G_h"], {"A.b-c_d": "E.f-G_h"}),
    ],
)
def test_parse_labels(values, labels):
    assert parse_labels(values) == labels


@pytest.mark.parametrize(
    "values, message",
    [
        (["=x"], "invalid label specification '=x': the key is empty"),
        (["a,,b"], "invalid label specification '': the key is empty"),
        (["-a=1"], "invalid label key '-a'"),
        (["a-=1"], "invalid label key 'a-'"),
        (["a b=1"], "invalid label key 'a b'"),
        (["k" * 64], "at most 63 characters"),
        (["/a=1"], "prefix part must not be empty"),
        (["Example.com/a=1"], "lowercase DNS subdomain"),
        (["a/b/c=1"], "at most one '/'"),
        (["a/=1"], "name part must not be empty"),
        (["k=-v"], "invalid label value '-v' for label 'k'"),
        (["k=a=b"], "invalid label value 'a=b'"),
        (["k=" + "v" * 64], "at most 63 characters"),
        (["k=a b"], "invalid label value 'a b'"),
    ],
)
def test_invalid_labels_are_named_in_the_message(values, message):
    with pytest.raises(ValueError) as caught:
        parse_labels(values)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
