"""Search-space YAML files: the shipped ones load, bad ones fail naming the file and key."""

from __future__ import annotations

import pytest

from tune_vqvae.errors import UserError
from tune_vqvae.losses import PERCEPTUAL_LOSSES
from tune_vqvae.search import SearchConfig, load_space
from tune_vqvae.search._config import resolve_spaces
from tune_vqvae.vocab import SPACES_DIR, paper_points


@pytest.mark.parametrize("loss", PERCEPTUAL_LOSSES)
def test_shipped_loss_spaces_load_with_the_paper_points(loss):
    space = load_space(SPACES_DIR / f"{loss}.yaml")
    assert space.losses == [loss]
    assert (space.low, space.high, space.log) == (1e-3, 10.0, True)
    assert space.with_mse == [True, False]
    assert not space.grid
    for p in paper_points():
        assert p in space.points


def test_paper_grid_is_the_papers_25_runs():
    space = load_space(SPACES_DIR / "paper_grid.yaml")
    assert space.grid
    assert sorted(space.losses) == sorted(PERCEPTUAL_LOSSES)
    assert sorted(map(str, space.points)) == sorted(map(str, paper_points()))
    # 6 losses x 4 points + the one MSE baseline every search runs
    assert len(space.losses) * len(space.points) + 1 == 25


def write(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """
losses: [gmsd]
w: {low: 0.001, high: 10, log: true}
with_mse: [true, false]
points:
  - {with_mse: true, w: 1.0}
  - {with_mse: false}
"""


@pytest.mark.parametrize(
    "text, key, words",
    [
        (GOOD + "colour: blue\n", "colour", "unknown key"),
        (GOOD.replace("low: 0.001", "low: 10").replace("high: 10", "high: 1"), "w", "must be <"),
        (GOOD.replace("high: 10", "high: 0.001"), "w", "must be <"),
        (GOOD.replace("low: 0.001", "low: 0").replace("{with_mse: true, w: 1.0}", "{with_mse: false}"),
         "w.low", "> 0"),
        (GOOD.replace("low: 0.001", "low: -1"), "w.low", "> 0"),
        (GOOD.replace("log: true", "log: true, step: 2"), "w.step", "unknown key"),
        (GOOD.replace("[gmsd]", "[gmsd, fancy]"), "losses", "unknown loss 'fancy'"),
        (GOOD.replace("losses: [gmsd]", "losses: []"), "losses", "non-empty"),
        (GOOD.replace("w: 1.0", "w: 100"), "points[0].w", "outside"),
        (GOOD.replace("{with_mse: false}", "{with_mse: false, w: 2}"), "points[1].w", "no weight"),
        (GOOD.replace("{with_mse: false}", "{with_mse: true, weight: 2}"), "points[1].weight", "unknown key"),
        (GOOD.replace("with_mse: [true, false]", "with_mse: [yes please]"), "with_mse", "booleans"),
        (GOOD.replace("w: {low: 0.001, high: 10, log: true}\n", ""), "w", "missing"),
        (GOOD.replace("low: 0.001", "low: abc"), "w.low", "finite number"),
    ],
)
def test_bad_space_names_file_and_key(tmp_path, text, key, words):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_space(path)
    message = str(e.value)
    assert str(path) in message
    assert f"key {key!r}" in message
    assert words in message
    assert "\n" not in message


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "losses: [gmsd\nw: {low: 1\n")
    with pytest.raises(UserError, match=r"not valid YAML at line \d") as e:
        load_space(path)
    assert str(path) in str(e.value)


def test_a_python_object_tag_is_refused_as_a_tag_not_a_syntax_error(tmp_path):
    path = write(tmp_path, "losses: [gmsd]\nw: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(UserError, match=r"at line 2: YAML tags such as !!python/object are not allowed") as e:
        load_space(path)
    assert "syntax" not in str(e.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(UserError, match="cannot read search space"):
        load_space(tmp_path / "nope.yaml")


def test_not_a_mapping(tmp_path):
    with pytest.raises(UserError, match="must be a mapping"):
        load_space(write(tmp_path, "- gmsd\n"))


def test_grid_needs_points_but_not_a_range(tmp_path):
    space = load_space(write(tmp_path, "losses: [ssim]\ngrid: true\npoints: [{with_mse: false}]\n"))
    assert space.grid and space.points == [{"with_mse": False}]
    with pytest.raises(UserError, match="a grid needs at least one point"):
        load_space(write(tmp_path, "losses: [ssim]\ngrid: true\n", "g2.yaml"))


def test_space_must_list_the_requested_loss(tmp_path):
    path = write(tmp_path, GOOD)
    cfg = SearchConfig(losses=["ssim"], space=str(path))
    with pytest.raises(UserError, match="does not list --loss ssim"):
        resolve_spaces(cfg)


def test_num_samples_must_cover_the_points(tmp_path):
    cfg = SearchConfig(losses=["gmsd"], num_samples=3)
    with pytest.raises(UserError, match="fewer than the 4 points"):
        resolve_spaces(cfg)


def test_is_point():
    space = load_space(SPACES_DIR / "gmsd.yaml")
    assert space.is_point(True, 0.5) and space.is_point(False, None)
    assert not space.is_point(True, 0.7)
