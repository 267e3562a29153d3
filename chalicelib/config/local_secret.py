"""Secrets a developer's machine makes for itself: random, kept in the data dir, owner-only.

Production reads its keys from AWS (``chalicelib.config.secrets``); on a laptop nobody should have
to invent one, and nobody else on the machine should be able to read it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def development_secret(data_dir: Path, name: str) -> bytes:
    """The key in ``data_dir/name``, made on first use. Two processes starting at once agree on one:
    the file appears whole (written aside, then linked into place) or not at all."""
    path = data_dir / name
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = data_dir / f".{name}.{os.getpid()}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        draft.unlink()
    return bytes.fromhex(path.read_text().strip())
