"""A Dockerfile read as Docker reads it, for tests that run what an image would run without Docker.

Enough of the format for our worker's file: parser directives and comments, line continuations,
``ARG`` defaults used in ``FROM``, stages, ``ENV`` with ``$VAR``/``${VAR}`` expansion, exec-form
(JSON) ``CMD``; and ``.dockerignore`` patterns with Docker's rules (the last matching pattern wins,
``!`` lets a path back in, a pattern that matches a directory matches everything under it).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    arguments: str  # the rest of the instruction, its continuation lines joined

    def exec_form(self) -> list[str]:
        """The instruction's JSON array (``CMD ["sh", "-c", "..."]``)."""
        parsed = json.loads(self.arguments)
        assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed), self
        return parsed


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def environment(self, inherited: dict[str, str]) -> dict[str, str]:
        """The stage's ``ENV`` applied in order over ``inherited`` (the base image's environment)."""
        env = dict(inherited)
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.arguments):
                name, _, value = pair.partition("=")
                env[name] = expand(value, env)
        return env


def expand(text: str, variables: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), text)


def logical_lines(text: str) -> list[str]:
    """Instructions one per line: comments dropped (also inside a continuation), continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return lines


def parse_dockerfile(path: Path) -> list[Stage]:
    """The file's stages, ``FROM`` expanded with the global ``ARG`` defaults."""
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            arguments[name] = default
        elif keyword == "FROM":
            words = expand(rest, arguments).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{keyword} before any FROM"
            stages[-1].instructions.append(Instruction(keyword, rest))
    return stages


def dockerignore_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def in_build_context(patterns: list[str], relative_path: str) -> bool:
    """Whether Docker sends ``relative_path`` (from the context's root) with the build context."""
    path = PurePosixPath(relative_path)
    candidates = [str(path), *(str(parent) for parent in path.parents if str(parent) != ".")]
    included = True
    for pattern in patterns:
        exception = pattern.startswith("!")
        cleaned = pattern.removeprefix("!").strip("/")
        if any(_matches(cleaned, candidate) for candidate in candidates):
            included = exception
    return included


def _matches(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        tail = pattern.removeprefix("**/")
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), tail) for i in range(len(parts)))
    # Docker's `*` stays within one path segment.
    return len(pattern.split("/")) == len(path.split("/")) and fnmatch.fnmatchcase(path, pattern)
