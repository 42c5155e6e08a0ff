"""Looking components up by name: listing, building, and the errors for bad names."""

from __future__ import annotations

import math

import pytest

import salplug
from salplug import ConfigError, SalplugError, UnknownComponentError


def test_builtins_are_listed_with_patterns():
    assert {"given", "center"} <= set(salplug.list_components("prior"))
    assert salplug.list_components("postprocessor", "med*") == ["median"]
    assert salplug.list_components("metric") == sorted(salplug.list_components("metric"))


def test_build_validates_before_construction():
    median = salplug.build("postprocessor", "median", {"size": 7})
    assert median.config.size == 7
    assert salplug.build("postprocessor", "median", median.config, size=9).config.size == 9
    with pytest.raises(ConfigError, match=r"postprocessor 'median': field 'size': Input should be a valid integer"):
        salplug.build("postprocessor", "median", size="large")


def test_a_mistyped_field_names_the_closest_real_one():
    with pytest.raises(ConfigError, match=r"field 'sise': Extra inputs are not permitted; did you mean 'size'\?"):
        salplug.build("postprocessor", "median", sise=3)
    with pytest.raises(ConfigError, match=r"field 'zzz': .*; the fields are size, max_elements"):
        salplug.build("postprocessor", "median", zzz=3)


def test_unknown_names_and_kinds_explain_themselves():
    with pytest.raises(UnknownComponentError) as err:
        salplug.build("prior", "centre")
    assert "Did you mean 'center'" in str(err.value)
    assert {"center", "given"} <= set(err.value.installed)
    assert "Installed priors: " in str(err.value) and "salplug plugins" in str(err.value)
    with pytest.raises(SalplugError, match="unknown component kind 'priors'. Did you mean 'prior'"):
        salplug.list_components("priors")


def test_configs_are_immutable():
    median = salplug.build("postprocessor", "median")
    with pytest.raises(Exception, match="frozen"):
        median.config.size = 9


def test_close_matches_ignore_case():
    with pytest.raises(UnknownComponentError, match=r"Did you mean 'median'"):
        salplug.build("postprocessor", "MEDIAN_")



@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_configs_refuse_infinity_and_nan_naming_the_field(value):
    with pytest.raises(ConfigError, match=r"^bad config for prior 'center': field 'sigma': Input should be a finite number$"):
        salplug.build("prior", "center", sigma=value)
    trainer = salplug.get_component("trainer", "baseline")
    with pytest.raises(ConfigError, match=r"field 'max_minutes': Input should be a finite number"):
        trainer.make_config({"out": "w.pt", "max_minutes": value})
