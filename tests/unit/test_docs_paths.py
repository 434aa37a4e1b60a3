"""The docs stand on the repository: every path they name exists, and none points outside it.

- A path in backticks (`core/payments/stk.py`, `tests/fixtures/bridge.py::wait_until`,
  `bench/README.md`) names a file or folder of this repository. It is looked for beside the
  document, at the root, under `src/mpesa_bridge/` (the docs' usual base) and under `tests/`; a bare
  file name (`retry.py`) must be the name of some tracked file. A relative link `[…](path)` must
  reach a file from the document's folder. Neither may lead out of the repository.
- Every Daraja citation — "daraja.md §4.3", "daraja.md section 1.7", "daraja.md rule 4",
  "reference §17" — in the docs, the code and the tests names a section (or rule) of
  `docs/daraja.md`.
- The tree in `docs/architecture.md` lists only modules that exist, and every module outside
  `storage/`; its import-linter paragraph names every module of every contract in `pyproject.toml`.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "mpesa_bridge"
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "DEVELOPERS.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")]
)
BASES = (ROOT, PACKAGE, ROOT / "tests")

# First segments that make a backticked word a path inside the repository.
TOP_LEVEL = {"src", "tests", "bench", "docs", ".ci", *(p.name for p in PACKAGE.iterdir() if p.is_dir())}
TOP_LEVEL |= {"unit", "integration", "e2e", "fixtures"}  # relative to tests/, as the docs write them
# A bare name with one of these endings is a file of the repository (`retry.py`, `pyproject.toml`).
FILE_SUFFIXES = {".py", ".md", ".toml", ".lock", ".lua", ".example"}
PATH_WORD = re.compile(r"^(?:\.\.?/)*[\w.@-]+(?:/[\w.@-]+)*/?$")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
TICKED = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def tracked_names() -> set[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [Path(line) for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file on disk
        files = [p.relative_to(ROOT) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return {f.name for f in files}


def prose(document: Path) -> str:
    """The document without its fenced code blocks (shell sessions, trees, JSON)."""
    return FENCE.sub("", document.read_text(encoding="utf-8"))


def ticked_paths(document: Path) -> Iterator[str]:
    for match in TICKED.finditer(prose(document)):
        word = match.group(1).strip().split("::", 1)[0]
        if not word or "://" in word or not PATH_WORD.match(word):
            continue
        relative = word.startswith(("../", "./"))
        under_a_known_folder = "/" in word and word.split("/", 1)[0] in TOP_LEVEL
        a_file_name = "/" not in word and Path(word).suffix in FILE_SUFFIXES
        if relative or under_a_known_folder or a_file_name:
            yield word


def test_the_documents_exist() -> None:
    assert (ROOT / "docs" / "style.md").is_file()
    assert (ROOT / "docs" / "daraja.md").is_file()
    assert len(DOCUMENTS) > 5


@pytest.mark.parametrize("document", DOCUMENTS, ids=rel)
def test_every_path_in_backticks_exists_inside_the_repository(document: Path) -> None:
    names = tracked_names()
    missing, outside = [], []
    for word in ticked_paths(document):
        if word.startswith(("../", "./")):
            target = document.parent / word
            if not inside(target):
                outside.append(word)
            elif not target.exists():
                missing.append(word)
        elif "/" not in word:
            if word not in names:
                missing.append(word)
        elif not any((base / word).exists() for base in (document.parent, *BASES)):
            missing.append(word)
    assert not outside, f"{rel(document)} points outside the repository: {outside}"
    assert not missing, f"{rel(document)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=rel)
def test_every_relative_link_reaches_a_file_inside_the_repository(document: Path) -> None:
    broken = []
    for match in LINK.finditer(prose(document)):
        target = match.group(1)
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = document.parent / target.split("#", 1)[0]
        if not inside(path) or not path.exists():
            broken.append(target)
    assert not broken, f"{rel(document)} links to what is not in the repository: {broken}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=rel)
def test_no_document_leans_on_files_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    leaning = [word for word in ("../shared", "/work/", "style-anchors", "house-review") if word in text]
    assert not leaning, f"{rel(document)} refers to files outside the repository: {leaning}"


# --- Daraja citations ------------------------------------------------------------------------

NUMBERS = r"\d+(?:\.\d+)*(?:(?:\s*,\s*|\s+and\s+)(?:§\s*)?\d+(?:\.\d+)*)*"
CITATIONS = (
    re.compile(rf"daraja\.md\s*(?P<kind>rules?\s+|sections?\s+|§\s*)?(?P<numbers>{NUMBERS})"),
    re.compile(rf"[Rr]eference\s+(?P<kind>§\s*)(?P<numbers>{NUMBERS})"),
)
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)*)[.\s]", re.MULTILINE)


def daraja_sections() -> tuple[set[str], set[str]]:
    text = (ROOT / "docs" / "daraja.md").read_text(encoding="utf-8")
    sections = set(HEADING.findall(text))
    rules_part = text.split("## Rules", 1)[1].split("\n## ", 1)[0]
    rules = set(re.findall(r"^(\d+)\. ", rules_part, re.MULTILINE))
    return sections, rules


def citing_files() -> list[Path]:
    files = [*DOCUMENTS, ROOT / ".env.example"]
    for folder in ("src", "tests", "bench"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.is_file()]


def citations(text: str) -> Iterator[tuple[str, str]]:
    """("rule" or "section", number) for every citation in `text`."""
    for pattern in CITATIONS:
        for match in pattern.finditer(text):
            kind = "rule" if (match.group("kind") or "").startswith("rule") else "section"
            for number in re.findall(r"\d+(?:\.\d+)*", match.group("numbers")):
                yield kind, number


def test_citations_are_found() -> None:
    found = list(citations("(daraja.md sections 1.3, 3.1, 5 and 19; daraja.md rule 4; reference §17.)"))
    sections = [("section", n) for n in ("1.3", "3.1", "5", "19")]
    assert found == [*sections, ("rule", "4"), ("section", "17")]


def test_every_daraja_citation_names_a_section_of_docs_daraja_md() -> None:
    sections, rules = daraja_sections()
    unknown = []
    for path in citing_files():
        for kind, number in citations(path.read_text(encoding="utf-8")):
            if number not in (rules if kind == "rule" else sections):
                unknown.append(f"{rel(path)}: daraja.md {kind} {number}")
    assert not unknown, "citations of sections docs/daraja.md does not have:\n" + "\n".join(sorted(set(unknown)))


def test_the_sections_docs_daraja_md_cites_itself_exist() -> None:
    sections, _ = daraja_sections()
    text = (ROOT / "docs" / "daraja.md").read_text(encoding="utf-8")
    unknown = sorted({n for n in re.findall(r"§(\d+(?:\.\d+)*)", text) if n not in sections})
    assert not unknown, f"docs/daraja.md cites its own sections that it does not have: {unknown}"


# --- docs/architecture.md --------------------------------------------------------------------


def architecture() -> str:
    return (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def tree_entries() -> set[str]:
    """Paths (relative to src/mpesa_bridge/, folders ending in /) listed in the tree block."""
    block = architecture().split("## The tree", 1)[1].split("```", 2)[1]
    lines = block.splitlines()[1:]  # the first line is the fence's language tag (empty) or root
    entries: set[str] = set()
    parents: list[str] = []
    for line in lines:
        marker = max(line.find("├── "), line.find("└── "))
        if marker < 0:
            continue
        depth = marker // 4
        names = re.split(r"\s{2,}", line[marker + 4 :].strip(), maxsplit=1)[0]
        parents = parents[:depth]
        for name in (n.strip() for n in names.split(",")):
            path = "".join(parents) + name
            entries.add(path)
        if names.endswith("/"):
            parents.append(names)
    return entries


def modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE))
        if "migrations/" in relative or (path.name == "__init__.py" and relative != "__init__.py"):
            continue
        found.add(relative)
    return found


def test_the_architecture_tree_lists_only_what_exists() -> None:
    entries = tree_entries()
    assert "core/ports.py" in entries and "api/v1/payments.py" in entries  # the parser reads the tree
    missing = sorted(e for e in entries if not (PACKAGE / e).exists())
    assert not missing, f"docs/architecture.md lists what is not in src/mpesa_bridge/: {missing}"


def test_the_architecture_tree_lists_every_module() -> None:
    entries = tree_entries()
    unlisted = sorted(m for m in modules() if m not in entries)
    assert not unlisted, f"docs/architecture.md's tree does not list: {unlisted}"


def test_the_architecture_names_every_import_contract() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    paragraph = architecture().split("import-linter contracts", 1)[1].split("\n## ", 1)[0]
    bullets = [b for b in re.split(r"\n- ", paragraph)[1:]]
    assert len(bullets) == len(contracts), "one bullet per contract in pyproject.toml"
    for contract, bullet in zip(contracts, bullets, strict=True):
        named = set(re.findall(r"`([^`]+)`", bullet))
        wanted = [*contract.get("source_modules", []), *contract.get("forbidden_modules", [])]
        wanted += contract.get("modules", [])
        absent = [m for m in wanted if m not in named and m.removeprefix("mpesa_bridge.") not in named]
        assert not absent, f"the contract {contract['name']!r} forbids or names {absent}, the doc does not"
