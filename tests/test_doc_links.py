"""Every relative link of the README and docs/ points to a file that exists and,
with a #fragment into Markdown, to a heading of it (issue 24: the README's
sections moved to docs/, and links between them must follow)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from collector import PROJECT_ROOT

DOCUMENTS = sorted([PROJECT_ROOT / "README.md", PROJECT_ROOT / "SECURITY.md",
                    PROJECT_ROOT / "js-snippet" / "README.md",
                    *(PROJECT_ROOT / "docs").glob("*.md")])
PARSER = MarkdownIt("commonmark").enable("table")


def plain_text(inline: Token) -> str:
    return "".join(child.content for child in inline.children or []
                   if child.type in ("text", "code_inline"))


def anchors(document: Path) -> set[str]:
    """The fragments GitHub gives a document's headings: lower case, spaces to
    hyphens, punctuation dropped, -1, -2 ... for repeats."""
    tokens = PARSER.parse(document.read_text())
    seen: dict[str, int] = {}
    found = set()
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open":
            continue
        slug = re.sub(r"[^\w\- ]", "", plain_text(inline).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(document: Path) -> Iterator[str]:
    for token in PARSER.parse(document.read_text()):
        for child in token.children or []:
            if child.type == "link_open":
                yield str(child.attrs["href"])


def relative_links() -> Iterator[tuple[Path, str]]:
    for document in DOCUMENTS:
        for href in links(document):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", href):  # http:, https:, mailto: ...
                yield document, href


def test_the_documents_have_relative_links() -> None:
    """The walk finds links at all: the README's to docs/, docs/'s to each other."""
    found = {(document.name, href) for document, href in relative_links()}
    assert {("README.md", "docs/marketing-guide.md"), ("README.md", "docs/deploy.md"),
            ("analyst-guide.md", "deploy.md#roles")} <= found
    assert len(found) > 20


@pytest.mark.parametrize(("document", "href"), list(relative_links()),
                         ids=lambda value: value.name if isinstance(value, Path) else value)
def test_relative_link_resolves(document: Path, href: str) -> None:
    path, _, fragment = href.partition("#")
    target = (document.parent / unquote(path)).resolve() if path else document
    assert target.exists(), f"{document.relative_to(PROJECT_ROOT)}: {href}: no such file"
    if fragment and target.suffix == ".md":
        assert fragment in anchors(target), (
            f"{document.relative_to(PROJECT_ROOT)}: {href}: no heading "
            f"#{fragment} in {target.relative_to(PROJECT_ROOT)}")
