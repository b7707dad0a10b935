"""The execution profile switch."""

import pytest

from cnn_helpers import profile


def test_default_is_full(monkeypatch):
    monkeypatch.delenv(profile.ENV_VAR, raising=False)
    assert profile.name() == "full"
    assert profile.pick(full=10, smoke=1) == 10
    assert profile.epochs(30) == 30
    assert "full" in profile.describe()


def test_smoke(monkeypatch):
    monkeypatch.setenv(profile.ENV_VAR, "smoke")
    assert profile.name() == "smoke"
    assert profile.pick(full=(224, 224), smoke=(64, 64)) == (64, 64)
    assert profile.epochs(30) == 1
    assert "NOT the book's results" in profile.describe()


@pytest.mark.parametrize("value", ["Smoke", " smoke ", "SMOKE"])
def test_case_and_spaces_are_forgiven(monkeypatch, value):
    monkeypatch.setenv(profile.ENV_VAR, value)
    assert profile.name() == "smoke"


def test_unknown_profile_names_the_variable(monkeypatch):
    monkeypatch.setenv(profile.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="CNN_COURSE_PROFILE='fast'"):
        profile.pick(full=1, smoke=2)


def test_epochs_must_be_positive():
    with pytest.raises(ValueError, match="full=0"):
        profile.epochs(0)
