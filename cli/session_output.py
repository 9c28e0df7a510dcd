"""Formatting shared by ``sync_output`` and ``forward_output`` (pure; nothing here raises on
unusual values).

- ``DELIMITER_LINE``: 80 ``-``; ``delimited(blocks, empty_text)``: Mutagen's ``list`` layout, a
  delimiter before each block and one after the last, or ``empty_text`` between two delimiters.
- ``heading_lines(state, labels)``: ``Name`` (if any), ``Identifier`` and, when ``labels`` and the
  session has some, ``Labels:`` with one ``\\tkey: value`` line each (sorted; an empty value shows
  as ``EMPTY_LABEL_VALUE``).
- ``status_text(state, descriptions)``: ``[Paused]``, else the status word's description (the
  word itself when unknown).
- ``format_url(url)``: the URL as typed, then captured Docker variables as indented
  ``VAR=value`` lines. ``url_json(url, path_key)``: the URL's JSON fields (``protocol``, and
  ``user``, ``host``, ``port`` when set, the path under ``path_key``, ``environment`` when set).
- ``set_fields(value, fields)``: ``{json key: value's attribute}`` for each ``json key ->
  attribute name`` of ``fields`` whose value is set (truthy), in ``fields``' order (Mutagen's
  ``omitempty``).
- ``humanize_bytes(size)`` (SI units like go-humanize), ``rfc3339(timestamp)`` (UTC, like Go's
  RFC3339Nano).
"""

from __future__ import annotations

import datetime

from mutagen_actors.supervisor import urls

DELIMITER_LINE = "-" * 80
EMPTY_LABEL_VALUE = "<empty>"


def humanize_bytes(size: int) -> str:
    """SI units with one decimal below 10 (``999 B``, ``1.5 kB``, ``18 EB``), like go-humanize."""
    if size < 10:
        return f"{size} B"
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB")
    exponent = 0
    value = float(size)
    while value >= 1000 and exponent < len(units) - 1:
        value /= 1000
        exponent += 1
    rounded = int(value * 10 + 0.5) / 10
    if rounded < 10:
        return f"{rounded:.1f} {units[exponent]}"
    return f"{rounded:.0f} {units[exponent]}"


def rfc3339(timestamp: float) -> str:
    """UTC RFC 3339 with fractional seconds (trailing zeros dropped), like Go's RFC3339Nano."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_url(url, indent: str = "\n\t\t") -> str:
    """The URL as typed, then captured Docker variables as ``VAR=value`` on indented lines."""
    text = urls.format_url(urls.Url(url.protocol, url.user, url.host, url.port, url.path))
    for variable in sorted(url.environment):
        text += f"{indent}{variable}={url.environment[variable]}"
    return text


def url_json(url, path_key: str) -> dict:
    data: dict = {"protocol": url.protocol}
    if url.user:
        data["user"] = url.user
    if url.host:
        data["host"] = url.host
    if url.port:
        data["port"] = url.port
    data[path_key] = url.path
    if url.environment:
        data["environment"] = dict(url.environment)
    return data


def set_fields(value, fields: dict[str, str]) -> dict:
    data: dict = {}
    for key, attribute in fields.items():
        item = getattr(value, attribute, None)
        if item:
            data[key] = item
    return data


def status_text(state, descriptions: dict) -> str:
    if state.paused:
        return "[Paused]"
    return descriptions.get(state.status, state.status)


def heading_lines(state, labels: bool) -> list[str]:
    lines = []
    if state.name:
        lines.append(f"Name: {state.name}")
    lines.append(f"Identifier: {state.identifier}")
    if labels and state.labels:
        lines.append("Labels:")
        for key in sorted(state.labels):
            lines.append(f"\t{key}: {state.labels[key] or EMPTY_LABEL_VALUE}")
    return lines


def delimited(blocks, empty_text: str) -> list[str]:
    lines = []
    for block in blocks:
        lines.append(DELIMITER_LINE)
        lines.extend(block)
    if not lines:
        return [DELIMITER_LINE, empty_text, DELIMITER_LINE]
    lines.append(DELIMITER_LINE)
    return lines
