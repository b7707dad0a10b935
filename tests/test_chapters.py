"""Invariants of the book: pairs in sync, the set-up cell, the table of contents, glue, stored outputs."""

from __future__ import annotations

import json
import pathlib
import re

import jupytext
import nbformat
import pytest
import yaml

from cnn_helpers import book

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
MD_FILES = sorted(CHAPTERS.glob("*.md"))
IDS = [p.stem for p in MD_FILES]
GLUE_REF = re.compile(r"\{glue(?::[a-z]+)?\}`([A-Za-z0-9_]+)(?::[^`]*)?`")


def cells(notebook):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in notebook.cells]


def stored(md: pathlib.Path):
    return nbformat.read(md.with_suffix(".ipynb"), as_version=4)


def test_every_notebook_has_a_markdown_twin():
    assert {p.stem for p in CHAPTERS.glob("*.ipynb")} == {p.stem for p in MD_FILES}


@pytest.mark.parametrize("md", MD_FILES, ids=IDS)
def test_pair_is_in_sync(md):
    assert cells(jupytext.read(md)) == cells(stored(md)), "run: jupytext --sync " + str(md.relative_to(ROOT))


@pytest.mark.parametrize("md", MD_FILES, ids=IDS)
def test_first_code_cell_is_the_setup_cell(md):
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    expected = book.setup_cell_source(config["repository"]["url"], config["repository"].get("branch", "main"))
    code = [c for c in jupytext.read(md).cells if c.cell_type == "code"]
    assert code[0].source == expected, "run: python tools/colab_cell.py --write"
    assert "hide-cell" in code[0].metadata.get("tags", [])
    assert "keras.utils.set_random_seed" in code[1].source, "the second code cell imports and seeds"


def test_toc_lists_exactly_the_chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert len(files) == len(set(files))
    listed = [f for f in files if f.startswith("chapters/")]
    assert sorted(listed) == [f"chapters/{stem}" for stem in IDS]
    assert set(files) - set(listed) == {"glossary"}, "besides the chapters, the toc lists only the glossary"


@pytest.mark.parametrize("md", MD_FILES, ids=IDS)
def test_every_glue_reference_is_glued_once(md):
    notebook = stored(md)
    glued = [
        out.metadata["scrapbook"]["name"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "scrapbook" in out.get("metadata", {})
    ]
    assert len(glued) == len(set(glued)), "a glue name is used twice"
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    missing = set(GLUE_REF.findall(prose)) - set(glued)
    assert not missing, f"referenced but never glued: {sorted(missing)}"


@pytest.mark.parametrize("md", MD_FILES, ids=IDS)
def test_stored_outputs_come_from_one_clean_run(md):
    notebook = stored(md)
    counts = [c.execution_count for c in notebook.cells if c.cell_type == "code"]
    assert None not in counts, "some cells were never executed"
    assert counts == list(range(1, len(counts) + 1)), "cells were not run once, top to bottom"
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, json.dumps(errors[0])[:500] if errors else ""


QUESTION_LABEL = re.compile(r"^\(q(\d{2})\)=\s*\n+## Q(\d{2}) · ", re.MULTILINE)


def test_part2_answers_each_interview_question_once_and_intro_links_them_all():
    """Part II: the labels (q01)= ... (q50)= each head one '## Qnn · ' section, and intro.md links each one."""
    found = [(md.stem, label, heading) for md in MD_FILES
             for label, heading in QUESTION_LABEL.findall(md.read_text(encoding="utf-8"))]
    assert all(label == heading for _, label, heading in found), "a (qNN)= label heads another question"
    numbers = sorted(int(label) for _, label, _ in found)
    assert numbers == list(range(1, 51)), f"questions missing or repeated: {numbers}"
    linked = re.findall(r"\{ref\}`Q(\d{2}) <q(\d{2})>`", (ROOT / "intro.md").read_text(encoding="utf-8"))
    assert sorted(int(a) for a, b in linked if a == b) == list(range(1, 51))
