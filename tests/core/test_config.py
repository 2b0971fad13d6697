import pytest

from dldoctor.core.config import load_config
from dldoctor.core.errors import ConfigError


def test_defaults_load_and_profiles_apply():
    assert load_config().get("run.cached_batches") == 4
    assert load_config(profile="quick").get("run.cached_batches") == 2
    assert load_config(profile="thorough").get("run.check_timeout_s") == 600.0


def test_pyproject_then_config_file_override(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.dldoctor.run]\ncached_batches = 3\nseed = 7\n")
    override = tmp_path / "ci.yaml"
    override.write_text("run:\n  seed: 11\n")
    config = load_config(tmp_path, override)
    assert config.get("run.cached_batches") == 3
    assert config.get("run.seed") == 11


def test_pyproject_is_found_from_a_subfolder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.dldoctor.run]\nseed = 5\n")
    (tmp_path / "src").mkdir()
    assert load_config(tmp_path / "src").get("run.seed") == 5


@pytest.mark.parametrize("text,needle", [
    ("run:\n  sed: 1\n", "unknown config key 'run.sed'"),
    ("run:\n  seed: fast\n", "must be a number"),
    ("run:\n  cached_batches: 2.5\n", "whole number"),
    ("profiles:\n  turbo: {}\n", "unknown profile"),
    ("run: [1, 2\n", "not valid YAML"),
])
def test_bad_overrides_are_rejected_with_the_key_named(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(None, path)
    assert needle in err.value.message


def test_missing_config_file_and_unknown_profile(tmp_path):
    with pytest.raises(ConfigError):
        load_config(None, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError):
        load_config(profile="turbo")


def test_the_pytest_targets_in_tool_dldoctor_are_not_a_run_setting(tmp_path):
    from dldoctor.core.config import load_config, pyproject_targets

    (tmp_path / "pyproject.toml").write_text('[tool.dldoctor]\ntargets = ["train.py"]\n[tool.dldoctor.run]\nseed = 3\n')
    assert load_config(tmp_path).get("run.seed") == 3
    assert pyproject_targets(tmp_path / "sub") == [str(tmp_path / "train.py")]
