"""The README stays a short map that tells the truth: the commands and variables it names exist,
and every link in it and in docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.config.settings import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
MAX_README_LINES = 300
DOCS_MAP_HEADING = "## Where to read on"

# Where a variable the README names must be read. A name found only in prose would not count, but a
# name found nowhere is certainly stale. tests/ holds TEST_POSTGRES_URL and TEST_REDIS_URL.
CODE_DIRS = ("chalicelib", "functions", "local_server", "local_worker", "scripts", "bench", "deploy", "tests")
CODE_FILES = ("app.py", "Makefile", "Procfile", ".chalice/config.json")

FENCED_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
MAKE_TARGET = re.compile(r"\bmake ([a-z][a-z0-9-]*)")
MAKEFILE_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):", re.MULTILINE)
ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")  # API_PORT, REDIS_URL: an underscore at least
ASSIGNED_NAME = re.compile(r"(?<![\w-])([A-Z][A-Z0-9_]*)=")  # AWS=emulated, LOG_FORMAT=console
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def code_in(markdown: str) -> list[str]:
    """The text of every fenced block and every inline code span."""
    blocks = FENCED_BLOCK.findall(markdown)
    return blocks + INLINE_CODE.findall(FENCED_BLOCK.sub("", markdown))


def make_targets_named(markdown: str) -> set[str]:
    return {target for code in code_in(markdown) for target in MAKE_TARGET.findall(code)}


def makefile_targets(makefile: str) -> set[str]:
    return set(MAKEFILE_TARGET.findall(makefile))


def shell_variables(code: str) -> set[str]:
    """Names a block assigns and then uses itself (``API=...`` then ``$API``): not the environment's."""
    return {name for name in ASSIGNED_NAME.findall(code) if re.search(rf"\$\{{?{name}\b", code)}


def variables_named(markdown: str) -> set[str]:
    """Environment variables: inline spans naming an UPPER_CASE name, and any NAME= assignment."""
    fenced = FENCED_BLOCK.findall(markdown)
    inline = INLINE_CODE.findall(FENCED_BLOCK.sub("", markdown))
    names = {name for span in inline for name in ENV_NAME.findall(span)}
    for code in fenced + inline:
        names |= set(ASSIGNED_NAME.findall(code)) - shell_variables(code)
    return names


def code_text(root: Path) -> str:
    this_file = Path(__file__).resolve()
    paths = [root / name for name in CODE_FILES if (root / name).exists()]
    for directory in CODE_DIRS:
        paths += [p for p in (root / directory).rglob("*.py") if p.resolve() != this_file]
    return "\n".join(path.read_text(errors="replace") for path in paths)


def variables_never_read(markdown: str, root: Path) -> list[str]:
    code = code_text(root)
    return sorted(name for name in variables_named(markdown) if not re.search(rf"\b{name}\b", code))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces as -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    without_code = FENCED_BLOCK.sub("", markdown)
    headings = re.findall(r"^#{1,6} (.+)$", without_code, re.MULTILINE)
    seen: dict[str, int] = {}
    found = set()
    for heading in headings:
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links of ``path`` whose file, or whose heading anchor in a Markdown file, is missing."""
    markdown = path.read_text()
    broken = []
    for target in LINK.findall(FENCED_BLOCK.sub("", markdown)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{path.name}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{path.name}: {target} (no such heading)")
    return broken


def docs_map_links(readme: str) -> list[str]:
    section = readme.split(DOCS_MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    return LINK.findall(section)


def test_the_readme_fits_on_a_few_screens() -> None:
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_every_make_target_the_readme_names_is_in_the_makefile() -> None:
    named = make_targets_named(README.read_text())
    missing = named - makefile_targets((PROJECT_ROOT / "Makefile").read_text())

    assert {"run", "test"} <= named
    assert sorted(missing) == []


def test_every_variable_the_readme_names_is_read_by_the_code() -> None:
    assert variables_never_read(README.read_text(), PROJECT_ROOT) == []


@pytest.mark.parametrize("path", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_docs_map_points_at_every_file_in_docs() -> None:
    # GIVEN the table under "## Where to read on"
    links = docs_map_links(README.read_text())

    # THEN it names each file of docs/, and each exists
    assert sorted(links) == sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))
    assert [link for link in links if not (PROJECT_ROOT / link).is_file()] == []


# --- The checks can fail ---------------------------------------------------------------------------


def test_a_make_target_missing_from_the_makefile_is_found() -> None:
    readme = "Run `make run`, then `make tset`:\n\n```bash\nmake bench-nothing\n```\n"

    assert make_targets_named(readme) - makefile_targets("run:\n\techo\n") == {"tset", "bench-nothing"}


def test_a_variable_no_code_reads_is_found(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.py").write_text('port = os.environ.get("API_PORT", "8000")\n')
    readme = "Set `API_PORT`, `API_PORTS` or `make run AWS=emulated`; `X-Content-Type-Options`, `GET`."

    assert variables_never_read(readme, tmp_path) == ["API_PORTS", "AWS"]


def test_a_shell_variable_of_a_code_block_is_not_taken_for_the_environment() -> None:
    readme = (
        "```bash\nAPI=http://127.0.0.1:8000\nID=$(curl -s $API/x)\ncurl $API/x/$ID\n"
        "API_TOKENS='a:b' make run\n```\n"
    )

    assert variables_named(readme) == {"API_TOKENS"}


def test_a_broken_link_and_a_missing_heading_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("# API\n\n## Errors `401`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/api.md#errors-401) [gone](docs/gone.md) [no heading](docs/api.md#scopes)"
        " [here](#api-x) [web](https://example.com/x)\n\n# API x\n"
    )

    assert broken_links(page) == [
        "README.md: docs/gone.md (no such file)",
        "README.md: docs/api.md#scopes (no such heading)",
    ]


def test_the_docs_map_is_read_from_its_own_section_only() -> None:
    readme = f"# x\n\n{DOCS_MAP_HEADING}\n\n[docs/api.md](docs/api.md)\n\n## After\n[docs/x.md](docs/x.md)"

    assert docs_map_links(readme) == ["docs/api.md"]
