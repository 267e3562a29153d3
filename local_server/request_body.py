"""A request's body as the local servers read it: never more than ``MAX_BODY_BYTES``.

Stock chalice read ``Content-Length`` bytes whatever the number, and our keep-alive server read a
whole chunked body, before the gateway (and its authorizer) saw the request: one unauthenticated
600 MB POST took the API process from 95 to 709 MB. Here a declared length over the limit is
refused before a byte of the body is read, and a chunked body as soon as its chunks add up to more.
"""

from __future__ import annotations

import re
from email.message import Message
from http import HTTPStatus
from typing import IO

MAX_CHUNK_SIZE_LINE = 1024
# As http.server allows header lines: a trailer is read and dropped, never kept.
MAX_TRAILER_LINES = 100
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")  # RFC 9112 7.1: 1*HEXDIG, nothing else (int() takes "-1")
DECIMAL = re.compile(r"[0-9]{1,19}")


class BodyRefused(Exception):
    """A body the local server will not read: answered with ``status``, then the connection closed."""

    status: int = HTTPStatus.BAD_REQUEST


class BodyTooLarge(BodyRefused):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int) -> None:
        # The app's own 413 says the same (chalicelib.http.requests).
        super().__init__(f"Request body must be at most {limit} bytes")


class MalformedBody(BodyRefused):
    pass


def read_body(headers: Message, rfile: IO[bytes], limit: int) -> bytes | None:
    """The body of the request whose ``headers`` were read from ``rfile``: None when it has none.

    Raises BodyTooLarge past ``limit`` bytes, MalformedBody for a framing no reader can trust
    (after either, where the next request starts is unknown: the connection must close).
    """
    transfer_codings = [
        coding.strip().lower()
        for field in headers.get_all("Transfer-Encoding", [])
        for coding in field.split(",")
    ]
    lengths = headers.get_all("Content-Length", [])
    if transfer_codings:
        if lengths:  # two framings: the way requests are smuggled past a proxy (RFC 9112 6.1)
            raise MalformedBody("Content-Length and Transfer-Encoding must not come together")
        if transfer_codings != ["chunked"]:
            raise MalformedBody("Transfer-Encoding must be chunked, or absent")
        return read_chunked_body(rfile, limit) or None
    if not lengths:
        return None
    if len(lengths) > 1 or not DECIMAL.fullmatch(lengths[0].strip()):
        raise MalformedBody("Content-Length must be one decimal number")
    length = int(lengths[0])
    if length > limit:
        raise BodyTooLarge(limit)
    body = rfile.read(length) if length else b""
    if len(body) < length:
        raise MalformedBody("The body ended before its Content-Length")
    return body or None


def read_chunked_body(rfile: IO[bytes], limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body up to and including its trailer, at most ``limit`` bytes."""
    chunks: list[bytes] = []
    size_read = 0
    while True:
        size_line = rfile.readline(MAX_CHUNK_SIZE_LINE)
        digits = size_line.split(b";", 1)[0].strip()
        if not size_line.endswith(b"\n") or not CHUNK_SIZE.fullmatch(digits):
            raise MalformedBody("A chunk size is not a hexadecimal number on a line of its own")
        size = int(digits, 16)
        if size == 0:
            break
        if size_read + size > limit:  # refused before the chunk is read
            raise BodyTooLarge(limit)
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.readline(MAX_CHUNK_SIZE_LINE).strip():
            raise MalformedBody("A chunk is shorter than its size")
        chunks.append(chunk)
        size_read += size
    for _ in range(MAX_TRAILER_LINES + 1):  # trailer fields, unused
        line = rfile.readline(MAX_CHUNK_SIZE_LINE)
        if not line.strip():
            return b"".join(chunks)
    raise MalformedBody("The chunked body's trailer has too many lines")
