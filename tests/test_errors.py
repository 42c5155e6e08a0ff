"""The close-match hint every "unknown name" message ends with."""

from __future__ import annotations

from salplug.errors import did_you_mean


def test_the_hint_ends_a_clause_naming_the_closest_choice():
    assert did_you_mean("sise", ["size", "sigma"]) == "; did you mean 'size'?"


def test_no_close_choice_gives_no_hint():
    assert did_you_mean("zzz", ["size", "sigma"]) == ""
    assert did_you_mean("size", []) == ""


def test_a_sentence_hint_ignoring_case_spells_the_choice_as_it_is():
    assert did_you_mean("MEDAIN", ["Median", "mean"], ignore_case=True, sentence=True) == " Did you mean 'Median'?"
    assert did_you_mean("MEDAIN", ["Median", "mean"]) == ""


def test_several_close_choices_are_named_closest_first():
    choices = ["central", "center", "given", "centres"]
    assert did_you_mean("centre", choices, n=3) == "; did you mean 'centres', 'center' or 'central'?"
    assert did_you_mean("centre", choices, n=2) == "; did you mean 'centres' or 'center'?"
