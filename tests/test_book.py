"""Glue values, the set-up cell, and the tool that writes it."""

import pathlib

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


@pytest.mark.parametrize(
    "value, digits, text",
    [
        (1.78e-05, 2, "1.8 × 10⁻⁵"),
        (3.5239e-22, 2, "3.5 × 10⁻²²"),
        (-4.71e-24, 2, "-4.7 × 10⁻²⁴"),
        (176.4, 3, "176"),
        (0.7241, 2, "0.72"),
        (0.0412, 2, "0.041"),
        (2.5e6, 2, "2.5 × 10⁶"),
        (0.0, 2, "0"),
    ],
)
def test_scientific_writes_powers_of_ten_with_superscripts(value, digits, text):
    assert book.scientific(value, digits) == text


def test_scientific_plain_range_and_errors():
    assert book.scientific(176.4, 2, plain=(0, 0)) == "1.8 × 10²"
    assert book.scientific(9999.0, 2) == "10000"  # rounds within the plain range
    with pytest.raises(ValueError, match="value="):
        book.scientific(float("nan"))
    with pytest.raises(ValueError, match="digits="):
        book.scientific(1.0, 0)


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


def test_repository_constant_is_the_configured_repository():
    import yaml

    config = yaml.safe_load((pathlib.Path(__file__).resolve().parents[1] / "_config.yml").read_text())
    assert book.REPOSITORY == config["repository"]["url"].rstrip("/")


def test_benchmark_result_reads_the_checkout(tmp_path):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "demo.json").write_text('{"runs": [1, 2]}')
    assert book.benchmark_result("demo", root=tmp_path) == {"runs": [1, 2]}
    with pytest.raises(FileNotFoundError, match="name='other'"):
        book.benchmark_result("other", root=tmp_path)


def test_benchmark_result_without_a_checkout_fetches_the_same_file_from_github(tmp_path, monkeypatch):
    import io
    import urllib.request

    seen = []

    def fake_urlopen(url, timeout):
        seen.append(url)
        return io.BytesIO(b'{"seed": 42}')

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert book.benchmark_result("demo", branch="dev", root=tmp_path) == {"seed": 42}
    assert seen == ["https://raw.githubusercontent.com/cnn-course/cnn-course/dev/benchmarks/results/demo.json"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "demo.json"])
def test_benchmark_result_rejects_paths(name):
    with pytest.raises(ValueError, match="name="):
        book.benchmark_result(name)


def test_the_committed_frontier_result_is_found_and_complete():
    record = book.benchmark_result("mnist_frontier")  # what chapter 9 loads
    assert not record["quick"]
    budgets = {r["budget_seconds"] for r in record["runs"]}
    for recipe in ("baseline", "ours"):
        assert {r["budget_seconds"] for r in record["runs"] if r["recipe"] == recipe and r["seed"] == record["seed"]} \
            == budgets
    assert len(record["seed_statistics"]["seeds"]) >= 3
