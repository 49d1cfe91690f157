import copy

import pytest
import yaml

from advmri.config import SCHEMA, deep_update, load_config, validate_config
from advmri.errors import ConfigError

from fabricate import REPO


def test_repository_configs_are_valid():
    load_config(REPO / "config.yaml")
    load_config(REPO / "config.yaml", REPO / "config" / "demo.yaml")


def test_oasis1_override_stops_with_one_line_until_its_root_is_set(tmp_path):
    with pytest.raises(ConfigError) as stopped:
        load_config(REPO / "config.yaml", REPO / "config" / "oasis1.yaml")
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("config: data.source is 'oasis1' but data.oasis1.root is empty")
    assert "config/oasis1.yaml" in message  # names where to set it

    root = tmp_path / "root.yaml"
    root.write_text("data:\n  oasis1:\n    root: /data/oasis1\n")
    config = load_config(REPO / "config.yaml", REPO / "config" / "oasis1.yaml", root)
    paper = load_config(REPO / "config.yaml")
    assert (
        config["data"]["source"] == "oasis1" and config["data"]["oasis1"]["root"] == "/data/oasis1"
    )
    # the override changes the anatomy and nothing else
    assert {k: v for k, v in config.items() if k != "data"} == {
        k: v for k, v in paper.items() if k != "data"
    }
    assert config["data"]["oasis1"]["slice_index"] == paper["data"]["oasis1"]["slice_index"]


def test_nifti_example_stops_with_one_line_until_its_manifest_is_set(tmp_path):
    with pytest.raises(ConfigError) as stopped:
        load_config(REPO / "config.yaml", REPO / "config" / "nifti.yaml")
    message = str(stopped.value)
    assert "\n" not in message and "data.nifti.manifest is empty" in message
    mine = tmp_path / "my_study.yaml"
    mine.write_text("data:\n  nifti:\n    manifest: /data/study/manifest.tsv\n")
    config = load_config(REPO / "config.yaml", REPO / "config" / "nifti.yaml", mine)
    assert config["data"]["source"] == "nifti"


def test_default_w_adv_grid_fills_the_papers_elided_range_in_order(study_config):
    w_adv = study_config["grid"]["w_adv"]
    assert len(w_adv) == 18 and w_adv == sorted(w_adv)
    # printed by the paper: 0, 0.0001, 0.001, ..., 0.5, 1, 1.2, 1.5, 2, 3
    assert w_adv[:3] == [0, 0.0001, 0.001] and w_adv[-6:] == [0.5, 1, 1.2, 1.5, 2, 3]
    assert w_adv[3] == 0.002  # study §5's choice for the first elided value


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
        ConfigError, match=r"data\.source = 'oasis' is not one of \['mni152', 'oasis1', 'nifti'\]"
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
        ({"data": {"source": "nifti"}}, "data.source is 'nifti' but data.nifti.manifest is empty"),
        (
            {
                "data": {
                    "source": "nifti",
                    "nifti": {"manifest": "m.tsv", "labels": {"csf": [2, 4]}},
                }
            },
            "data.nifti.labels: label 2 is in both wm and csf",
        ),
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
