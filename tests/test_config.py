import copy

import pytest
import yaml

from advmri.config import SCHEMA, deep_update, load_config, validate_config
from advmri.errors import ConfigError

from fabricate import REPO


def test_repository_configs_are_valid():
    load_config(REPO / "config.yaml")
    load_config(REPO / "config.yaml", REPO / "config" / "demo.yaml")


def test_unknown_key_is_rejected_with_its_path(study_config):
    study_config["synthesis"]["nosie_std"] = 0.1
    with pytest.raises(ConfigError, match=r"synthesis: unknown key 'nosie_std'"):
        validate_config(study_config)


def test_out_of_range_value_is_rejected_with_its_path_and_bound(study_config):
    study_config["grid"]["w_adv"][3] = -0.1
    with pytest.raises(ConfigError, match=r"grid\.w_adv\[3\] = -0\.1 must be at least 0"):
        validate_config(study_config)


def test_wrong_choice_is_rejected_with_the_allowed_values(study_config):
    study_config["data"]["source"] = "oasis"
    with pytest.raises(
        ConfigError, match=r"data\.source = 'oasis' is not one of \['mni152', 'oasis1'\]"
    ):
        validate_config(study_config)


def test_missing_section_is_rejected(study_config):
    del study_config["split"]
    with pytest.raises(ConfigError, match="'split' is a required property"):
        validate_config(study_config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid": {"lr": [0.001, 0.001]}}, "grid.lr lists a value twice"),
        ({"perceptual": {"layer_weights": [1.0]}}, "layer_weights has 1 entries"),
        ({"data": {"source": "oasis1"}}, "data.oasis1.root is empty"),
        ({"stats": {"figures": {"w_per": 9.0}}}, "stats.figures.w_per = 9.0 is not in grid.w_per"),
    ],
)
def test_inconsistent_settings_are_rejected(study_config, change, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        validate_config(deep_update(copy.deepcopy(study_config), change))


def test_every_schema_property_has_a_description_or_reference():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            documented = "description" in sub or "$ref" in sub or "properties" in sub
            assert documented, f"{path}{key} has no description"
            walk(sub, f"{path}{key}.")

    walk(schema, "")
