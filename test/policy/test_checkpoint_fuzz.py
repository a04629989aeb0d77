"""Malformed checkpoints (hypothesis): a config JSON with unknown, mistyped or out-of-range fields, a
truncated file, a safetensors file that is corrupt or whose shapes do not fit the config. Loading
either works (a change that keeps the checkpoint valid) or raises CheckpointError naming the file;
never another exception, and nothing is ever unpickled."""

import json
import shutil

import pytest
import torch
from hypothesis import given, settings, strategies as st
from safetensors.torch import load_file, save_file

from asyncvla_ros.policy.checkpoint import POLICY_FILE, WEIGHTS_FILE, CheckpointError
from asyncvla_ros.policy.normalization import FeatureStats, Normalizer
from asyncvla_ros.policy.policy import AsyncVLAPolicy

from .conftest import INSTRUCTIONS, tiny_config

CASES = {"config": 0, "bytes": 0, "weights": 0}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt") / "policy"
    p = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=0).eval()
    p.normalizer = Normalizer(FeatureStats([0.0] * 6, [1.0] * 6), FeatureStats([0.0] * 6, [1.0] * 6))
    p.save_pretrained(directory)
    yield directory
    print(f"\nmalformed checkpoints tried: {CASES}")


@pytest.fixture(autouse=True)
def nothing_is_unpickled(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    for target in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.load"):
        monkeypatch.setattr(target, refuse)


def copy_of(saved, tmp_path_factory):
    out = tmp_path_factory.mktemp("case") / "policy"
    shutil.copytree(saved, out)
    return out


def load_or_refuse(directory) -> str:
    try:
        AsyncVLAPolicy.from_pretrained(directory)
        return "loaded"
    except CheckpointError as err:
        assert str(directory) in str(err), err  # names the file
        return "refused"


def paths(tree, prefix=()):
    """Every (path, value) in a nested JSON object, dicts only (lists are leaves)."""
    for key, value in tree.items():
        yield (*prefix, key), value
        if isinstance(value, dict):
            yield from paths(value, (*prefix, key))


json_values = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                        st.text(max_size=20), st.lists(st.integers(-5, 5), max_size=4), st.just({}))


@settings(max_examples=15)
@given(data=st.data())
def test_a_config_with_bad_fields_is_refused_with_the_file_named(saved, tmp_path_factory, data):
    CASES["config"] += 1
    directory = copy_of(saved, tmp_path_factory)
    meta = json.loads((directory / POLICY_FILE).read_text())
    edit = data.draw(st.sampled_from(["unknown_field", "value", "drop"]))
    where = data.draw(st.sampled_from([p for p, v in paths(meta) if p[0] in ("config", "normalization")]))
    parent = meta
    for key in where[:-1]:
        parent = parent[key]
    if edit == "unknown_field":
        parent[data.draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in parent))] = data.draw(json_values)
    elif edit == "value":
        parent[where[-1]] = data.draw(json_values)
    else:
        del parent[where[-1]]
    (directory / POLICY_FILE).write_text(json.dumps(meta))
    outcome = load_or_refuse(directory)
    if edit == "unknown_field" and where[0] == "config" and len(where) > 1 and "vlm_config" not in where:
        assert outcome == "refused"  # our configs know their fields (transformers' vlm_config takes any)


@settings(max_examples=10)
@given(which=st.sampled_from([POLICY_FILE, WEIGHTS_FILE]), cut=st.floats(0.0, 0.99), junk=st.binary(max_size=64))
def test_a_truncated_or_corrupt_file_is_refused_with_the_file_named(saved, tmp_path_factory, which, cut, junk):
    CASES["bytes"] += 1
    directory = copy_of(saved, tmp_path_factory)
    raw = (directory / which).read_bytes()
    (directory / which).write_bytes(raw[: int(len(raw) * cut)] + junk)
    assert load_or_refuse(directory) == "refused"


@settings(max_examples=10)
@given(data=st.data())
def test_weights_whose_names_or_shapes_do_not_fit_the_config_are_refused(saved, tmp_path_factory, data):
    CASES["weights"] += 1
    directory = copy_of(saved, tmp_path_factory)
    weights = load_file(directory / WEIGHTS_FILE)
    name = data.draw(st.sampled_from(sorted(weights)))
    edit = data.draw(st.sampled_from(["shape", "drop", "extra"]))
    if edit == "shape":
        weights[name] = torch.zeros(*(s + 1 for s in weights[name].shape), 1)
    elif edit == "drop":
        del weights[name]
    else:
        weights[name + ".extra"] = torch.zeros(2)
    save_file(weights, directory / WEIGHTS_FILE)
    assert load_or_refuse(directory) == "refused"


def test_a_node_is_told_which_parameter_names_a_checkpoint_it_cannot_load(saved, tmp_path_factory):
    from asyncvla_ros.policy.default import load_policy

    directory = copy_of(saved, tmp_path_factory)
    (directory / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=r"model_dir .*action_model.safetensors"):
        load_policy(str(directory))
