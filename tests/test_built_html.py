"""The built site shows what the sources mean: no markup that failed to render, no missing section.

Reads the HTML that ``make book`` writes to ``_build/html`` (or the directory named by ``BOOK_HTML_DIR``),
so run ``make book`` before ``make test`` (CI does). It fails on, per chapter page:

* raw ``{glue`` text anywhere on the page outside code-cell inputs: a glue role that was not parsed, e.g.
  because a stray code fence swallowed the prose around it;
* a literal code fence (three backticks) in the page outside code cells: Markdown that was not parsed;
* a missing standard section: the "The question" and "Short answer" admonitions, and the "Common wrong
  answers" and "Self-check" sections (``<h2>``), the latter holding at least one answer dropdown; in Part II
  (sections titled "Q07 · ..."), both admonitions in every question's section, and the Self-check;
* a chapter of ``chapters/`` without a page, or a page older than its notebook (a stale build).

If the HTML is missing (or stale), the tests are skipped with the reason, except when the environment
variable ``CI`` is set: there they fail, so that they cannot pass silently.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest
from bs4 import BeautifulSoup

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = pathlib.Path(os.environ.get("BOOK_HTML_DIR", ROOT / "_build" / "html"))
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
FENCE = "`" * 3

ADMONITIONS = ("The question", "Short answer")
SECTIONS = ("Common wrong answers", "Self-check")
# Part II chapters: a section per interview question, "Q07 · <question>"; common wrong answers sit in each
# question's section (when there is one), so only the Self-check is a chapter-level section.
QUESTION_HEADING = re.compile(r"^Q\d{2} · ")
PART2_SECTIONS = ("Self-check",)


def _unavailable(reason: str) -> None:
    """Fail in CI (the book must have been built), skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: run `make book` before `make test`)", pytrace=False)
    pytest.skip(f"{reason}; run `make book` first")


def _page(notebook: pathlib.Path) -> BeautifulSoup:
    if not (HTML / "index.html").exists():
        _unavailable(f"no built book in {HTML}")
    page = HTML / "chapters" / (notebook.stem + ".html")
    if not page.exists():
        pytest.fail(f"{notebook.name} has no page in the built book ({page} is missing)", pytrace=False)
    if page.stat().st_mtime < notebook.stat().st_mtime:
        _unavailable(f"{page.name} is older than {notebook.name}: the build is stale")
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    article = soup.find("article")
    assert article is not None, f"{page}: no <article> (has the theme changed?)"
    return article


def _text_without(article: BeautifulSoup, selector: str) -> str:
    """The page's text with the elements matching ``selector`` (CSS) taken out."""
    copy = BeautifulSoup(str(article), "html.parser")
    for node in copy.select(selector):
        node.decompose()
    return copy.get_text()


def _context(text: str, needle: str, width: int = 70) -> str:
    at = text.find(needle)
    return " ".join(text[max(0, at - width) : at + width].split())


def _heading(tag) -> str:
    """A heading's text without Sphinx's ``#`` permalink."""
    return "".join(t.get_text() for t in tag.contents if getattr(t, "name", None) != "a" or "headerlink"
                   not in (t.get("class") or [])).strip()


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_raw_glue_role(notebook):
    text = _text_without(_page(notebook), "div.cell_input")
    assert "{glue" not in text, f"raw glue role on the page: ...{_context(text, '{glue')}..."


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_literal_code_fence_in_prose(notebook):
    text = _text_without(_page(notebook), "div.cell")
    assert FENCE not in text, f"a Markdown fence was not parsed: ...{_context(text, FENCE)}..."


def _admonition_titles(node) -> set[str]:
    return {t.get_text().strip() for t in node.select(".admonition > .admonition-title")}


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_standard_sections_are_present(notebook):
    article = _page(notebook)
    headings = {_heading(h): h for h in article.find_all("h2")}
    questions = {t: h for t, h in headings.items() if QUESTION_HEADING.match(t)}
    if questions:  # Part II: one interview question per section, each with its question and short answer
        missing = [f"{t[:3]}: {a}" for t, h in questions.items() for a in ADMONITIONS
                   if a not in _admonition_titles(h.find_parent("section"))]
        missing += [s for s in PART2_SECTIONS if s not in headings]
    else:
        missing = [t for t in ADMONITIONS if t not in _admonition_titles(article)]
        missing += [s for s in SECTIONS if s not in headings]
    assert not missing, f"{notebook.stem}: missing {missing}"
    section = headings["Self-check"].find_parent("section")
    assert section is not None and section.select("details.sd-dropdown"), "Self-check has no answer dropdown"


def test_every_chapter_is_checked():
    """The parametrised tests above run on the notebooks: there must be some, one page each."""
    assert len(CHAPTERS) >= 10, f"expected the book's chapters in {ROOT / 'chapters'}, found {len(CHAPTERS)}"
