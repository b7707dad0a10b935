"""Glue values, the set-up cell, and the tool that writes it."""

import pytest

from cnn_helpers import book


def test_glue_stores_the_formatted_text(monkeypatch):
    stored = {}
    monkeypatch.setattr(book, "_myst_glue", lambda name, value, display: stored.update({name: (value, display)}))
    book.glue("total_params", 903400, ",")
    book.glue("peak_mb", 12.6136, ".1f")
    book.glue("device", "CPU")
    assert stored == {"total_params": ("903,400", False), "peak_mb": ("12.6", False), "device": ("CPU", False)}


def test_glue_returns_value_and_checks_name():
    assert book.glue("total_params", 903400, ",") is None  # nothing to display after a cell
    with pytest.raises(ValueError, match="name='total-params'"):
        book.glue("total-params", 1)


def test_setup_cell_installs_from_the_repository_in_colab_only():
    source = book.setup_cell_source("https://github.com/org/repo/", "dev")
    assert "cnn-helpers[pinned] @ git+https://github.com/org/repo@dev" in source
    assert 'if "google.colab" in sys.modules:' in source
    assert "runtime.import_tensorflow_quietly()" in source
    compile(source, "<setup>", "exec")


@pytest.mark.parametrize(
    "url, branch, argument", [("http://x", "main", "repository_url="), ("https://x", "a b", "branch=")]
)
def test_setup_cell_rejects_bad_input(url, branch, argument):
    with pytest.raises(ValueError, match=argument):
        book.setup_cell_source(url, branch)
