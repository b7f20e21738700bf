"""Recipes as data: YAML -> dataclasses, typed overrides, unknown-key suggestions, the registry, the CLI verbs."""

from dataclasses import dataclass, field

import pytest
import yaml

from affectreason.cli import main
from affectreason.errors import AffectReasonError
from affectreason.paths import recipes_dir
from affectreason.train.config import (
    Recipe,
    SFTRecipe,
    build_recipe,
    field_paths,
    list_recipes,
    load_recipe,
    recipe_class,
    recipe_to_dict,
    register_recipe,
)

REQUIRED = {
    f"{model}/{method}"
    for model in ("qwen2_5_omni_3b", "qwen2_5_omni_7b", "qwen3_omni_30b_a3b")
    for method in ("sft_lora", "sft_qlora")
} - {"qwen3_omni_30b_a3b/sft_qlora"}  # 4-bit is refused on the fused-expert MoE family


def _cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_packaged_recipes_load_and_keys_map_one_to_one():
    names = {name for name, _ in list_recipes()}
    assert REQUIRED <= names
    for name, path in list_recipes():
        recipe = load_recipe(name)
        raw = yaml.safe_load(path.read_text())
        # every key written in the file is a field of the recipe's class
        flat = set()
        for key, value in raw.items():
            flat |= {f"{key}.{leaf}" for leaf in value} if isinstance(value, dict) else {key}
        assert flat <= set(field_paths(type(recipe))), name
        assert recipe.lora.target_modules is None  # the backbone's language-model-only default
        if name in REQUIRED:  # the SFT recipes spell out every key, as documentation
            assert flat == set(field_paths(type(recipe))), name
            assert recipe.method == "sft" and isinstance(recipe, SFTRecipe)
            assert recipe.model.quantization == ("4bit" if name.endswith("qlora") else None)


def test_overrides_are_typed_and_accept_leaf_shortcuts():
    recipe = load_recipe(
        "qwen2_5_omni_7b/sft_lora",
        [
            "data.path=captions.csv",
            "output_dir=runs/sft1",
            "train.learning_rate=2e-4",
            "max_steps=10",
            "train.gradient_checkpointing=false",
            "data.fps=2",
            "lora.target_modules=[q_proj, v_proj]",
            "train.resume_from_checkpoint=auto",
            "train.save_total_limit=null",
        ],
    )
    assert recipe.data.path == "captions.csv"
    assert recipe.train.output_dir == "runs/sft1"
    assert recipe.train.learning_rate == pytest.approx(2e-4) and isinstance(recipe.train.learning_rate, float)
    assert recipe.train.max_steps == 10 and recipe.train.gradient_checkpointing is False
    assert recipe.data.fps == 2.0
    assert recipe.lora.target_modules == ["q_proj", "v_proj"]
    assert recipe.train.resume_from_checkpoint == "auto" and recipe.train.save_total_limit is None
    assert recipe.train.bf16 == "auto"
    assert load_recipe("qwen2_5_omni_7b/sft_lora", ["train.bf16=true"]).train.bf16 is True
    regex = load_recipe("qwen2_5_omni_7b/sft_lora", [r"lora.target_modules=.*\.q_proj"]).lora
    assert regex.target_modules == r".*\.q_proj"  # a string stays one regex (peft's meaning)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.learning_rat=1e-4", "did you mean 'train.learning_rate'"),
        ("trian.seed=1", "did you mean 'train.seed'"),
        ("outptu_dir=x", "did you mean 'train.output_dir'"),
        ("train.max_steps=ten", "train.max_steps: expected an integer"),
        ("lora.r=2.5", "lora.r: expected an integer"),
        ("model.quantization=3bit", "expected '4bit' or '8bit' or null"),
        ("train.bf16=maybe", "train.bf16"),
        ("data=x.csv", "'data' is a recipe section"),
        ("method=dpo", "cannot be overridden"),
        ("no_equals_sign", "is not key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(AffectReasonError, match=message) as info:
        load_recipe("qwen2_5_omni_3b/sft_lora", [override])
    assert "\n" not in str(info.value)


def test_ambiguous_shortcut_names_the_candidates():
    @dataclass
    class ExtraSection:
        seed: int = 0

    @dataclass
    class ExtraRecipe(Recipe):
        extra: ExtraSection = field(default_factory=ExtraSection)

    register_recipe("test_extra", ExtraRecipe)
    with pytest.raises(
        AffectReasonError, match="ambiguous recipe key 'seed': use one of train.seed, extra.seed"
    ):
        build_recipe({"method": "test_extra"}, ["seed=3"])
    recipe = build_recipe({"method": "test_extra", "extra": {"seed": "7"}}, ["train.seed=3"])
    assert isinstance(recipe, ExtraRecipe) and recipe.extra.seed == 7 and recipe.train.seed == 3
    assert recipe_class("test_extra") is ExtraRecipe
    assert recipe_to_dict(recipe)["extra"] == {"seed": 7}


def test_registry_rejects_unknown_methods_and_non_recipes():
    with pytest.raises(AffectReasonError, match="unknown recipe method 'sfft'; did you mean 'sft'"):
        build_recipe({"method": "sfft"})
    with pytest.raises(AffectReasonError, match="no 'method' key"):
        build_recipe({"model": {"name_or_path": "x"}})
    with pytest.raises(TypeError):
        register_recipe("bad", dict)


def test_recipes_cli_ls_show_cp_validate(tmp_path, capsys):
    code, out, _ = _cli(capsys, "recipes", "ls")
    assert code == 0 and "qwen2_5_omni_7b/sft_qlora" in out and "accelerate" not in out

    code, out, _ = _cli(capsys, "recipes", "show", "qwen2_5_omni_7b/sft_lora", "train.learning_rate=3e-4")
    assert code == 0 and yaml.safe_load(out)["train"]["learning_rate"] == pytest.approx(3e-4)

    dest = tmp_path / "my_sft.yaml"
    code, out, _ = _cli(capsys, "recipes", "cp", "qwen2_5_omni_7b/sft_lora", str(dest))
    source = recipes_dir() / "qwen2_5_omni_7b" / "sft_lora.yaml"
    assert code == 0 and dest.read_text() == source.read_text()  # comments (memory presets) kept
    code, _, err = _cli(capsys, "recipes", "cp", "qwen2_5_omni_7b/sft_lora", str(dest))
    assert code == 2 and "--force" in err

    code, out, _ = _cli(capsys, "recipes", "validate", str(dest), "data.path=x.csv")
    assert code == 0 and out.startswith("ok:")

    misspelt = tmp_path / "bad.yaml"
    misspelt.write_text(dest.read_text().replace("  learning_rate:", "  learning_rat:"))
    code, out, err = _cli(capsys, "recipes", "validate", str(misspelt))
    assert code == 2
    assert (
        err.strip() == "error: unknown recipe key 'train.learning_rat'; did you mean 'train.learning_rate'?"
    )

    code, _, err = _cli(capsys, "recipes", "show", "qwen2_5_omni_7b/sft_lroa")
    assert code == 2 and "did you mean 'qwen2_5_omni_7b/sft_lora'" in err


def test_recipe_file_errors(tmp_path, capsys):
    not_yaml = tmp_path / "x.yaml"
    not_yaml.write_text("method: sft\nmodel: [unclosed\n")
    code, _, err = _cli(capsys, "recipes", "validate", str(not_yaml))
    assert code == 2 and "not valid YAML" in err
    wrong_type = tmp_path / "y.yaml"
    wrong_type.write_text("method: sft\ntrain:\n  max_steps: [1, 2]\n")
    code, _, err = _cli(capsys, "recipes", "validate", str(wrong_type))
    assert code == 2 and "train.max_steps: expected an integer" in err


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3", "fsdp"])
def test_accelerate_configs_are_valid(name):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(recipes_dir() / "accelerate" / f"{name}.yaml"))
    expected = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}[name]
    assert config.distributed_type.value == expected
    assert config.mixed_precision == "bf16"
    if name.startswith("zero"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])
