"""Recipes: trl's own config fields plus our sections, typed overrides, value checks, bounded YAML, the CLI verbs."""

import dataclasses
import importlib.util
import subprocess
import sys

import pytest
import yaml

from affectreason.cli import main
from affectreason.errors import AffectReasonError
from affectreason.paths import recipes_dir
from affectreason.train.config import RecipeError, build_recipe, config_class, list_recipes, load_recipe
from affectreason.train.sections import METHODS, SECTIONS

FAMILIES = (
    "qwen2_5_omni_3b",
    "qwen2_5_omni_7b",
    "qwen3_omni_30b_a3b",
    "qwen2_5_vl_7b",
    "llava_next_video_7b",
)
REQUIRED = {
    f"{family}/{name}" for family in FAMILIES for name in ("sft_lora", "sft_qlora", "grpo_wheel", "dpo")
} - {"qwen3_omni_30b_a3b/sft_qlora"}  # 4-bit is refused on the fused-expert MoE family


def _cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_packaged_recipes_hold_trl_fields_and_our_sections():
    names = {name for name, _ in list_recipes()}
    assert REQUIRED <= names
    for name, path in list_recipes():
        recipe = load_recipe(name)
        raw = yaml.safe_load(path.read_text())
        trl_fields = {f.name for f in dataclasses.fields(config_class(recipe.method))}
        for key, value in raw.items():
            if key in SECTIONS:
                assert key in METHODS[recipe.method].sections, (name, key)
                assert set(value) <= {f.name for f in dataclasses.fields(SECTIONS[key])}, (name, key)
            else:
                assert key in trl_fields | {"method", "description"}, (name, key)
                if key in trl_fields and key not in {"bf16", "report_to", "dataloader_num_workers"}:
                    assert getattr(recipe.args, key) == value, (name, key)  # reaches trl's config as written
        assert type(recipe.args).__name__ == METHODS[recipe.method].config
        assert recipe.method == name.split("/")[1].split("_")[0]
        assert recipe.lora.target_modules is None  # the backbone's language-model-only default
        assert recipe.model.quantization == ("4bit" if name.endswith("qlora") else recipe.model.quantization)
        assert recipe.args.remove_unused_columns is False  # the collators read the media columns


def test_overrides_are_typed_trl_fields_or_section_fields():
    recipe = load_recipe(
        "qwen2_5_omni_7b/sft_lora",
        [
            "data.path=",
            "output_dir=runs/sft1",
            "learning_rate=2e-4",
            "max_steps=10",
            "activation_checkpointing=false",
            "data.fps=2",
            "lora.target_modules=[q_proj, v_proj]",
            "resume_from_checkpoint=auto",
            "save_total_limit=null",
            "packing=true",
            "adam_beta2=0.95",
        ],
    )
    args = recipe.args
    assert args.output_dir == "runs/sft1" and args.max_steps == 10 and args.packing is True
    assert args.learning_rate == pytest.approx(2e-4) and isinstance(args.learning_rate, float)
    assert args.activation_checkpointing is False and args.adam_beta2 == pytest.approx(0.95)
    assert args.resume_from_checkpoint == "auto" and args.save_total_limit is None
    assert recipe.data.fps == 2.0 and recipe.lora.target_modules == ["q_proj", "v_proj"]
    assert args.bf16 is False  # unset: on only where a GPU supports it (this is a CPU run)
    assert recipe.trl_values["learning_rate"] == 2e-4 and "packing" in recipe.trl_values
    regex = load_recipe("qwen2_5_omni_7b/sft_lora", [r"lora.target_modules=.*\.q_proj"]).lora
    assert regex.target_modules == r".*\.q_proj"  # a string stays one regex (peft's meaning)
    grpo = load_recipe(
        "qwen2_5_omni_3b/grpo_wheel",
        [
            "steps_per_generation=2",
            "mask_truncated_completions=true",
            "top_k=20",
            "vllm_tensor_parallel_size=2",
        ],
    ).args
    assert (grpo.steps_per_generation, grpo.mask_truncated_completions, grpo.top_k) == (2, True, 20)
    assert grpo.vllm_tensor_parallel_size == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learning_rat=1e-4", "did you mean 'learning_rate'"),
        ("train.max_steps=2", "unknown recipe key 'train.max_steps'; did you mean 'max_steps'"),
        ("sft.max_length=2", "did you mean 'max_length'"),
        ("data.frame=4", "did you mean 'data.frames'"),
        ("max_steps=ten", "max_steps: input should be a valid integer"),
        ("lora.r=2.5", "lora.r: input should be a valid integer"),
        ("model.quantization=3bit", "model.quantization: input should be '4bit' or '8bit'"),
        ("bf16=maybe", "bf16: input should be a valid boolean"),
        ("lr_scheduler_type=cosin", "cosin is not a valid SchedulerType"),
        ("data=x.csv", "'data' is a recipe section"),
        ("method=dpo", "cannot be overridden"),
        ("no_equals_sign", "is not key=value"),
        ("remove_unused_columns=true", "remove_unused_columns: must stay False"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(AffectReasonError, match=message) as info:
        load_recipe("qwen2_5_omni_3b/sft_lora", [override])
    assert "\n" not in str(info.value)


def test_validate_reports_every_value_problem_at_once_without_importing_torch(tmp_path):
    """NaN, negative, zero, unknown rewards, missing data, a missing logger: one line each, before trl loads."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "method: grpo\n"
        "model: {name_or_path: x, quantization: 3bit}\n"
        "data: {path: nothere.csv, frames: 0}\n"
        "rewards: {funcs: [emotion_wheel, nope]}\n"
        "learning_rate: .nan\n"
        "max_steps: -5\n"
        "per_device_train_batch_size: 0\n"
        "num_generations: 1\n"
        "reward_weights: [1.0]\n"
        "report_to: [no_such_logger]\n"
    )
    script = (
        "import sys\nfrom affectreason.cli import main\n"
        f"code = main(['recipes', 'validate', {str(bad)!r}])\n"
        "assert 'torch' not in sys.modules and 'trl' not in sys.modules, 'imported torch'\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines) and "Traceback" not in run.stderr
    expected = [
        "model.quantization: input should be '4bit' or '8bit'",
        "learning_rate: nan is not a usable number",
        "max_steps: must be -1 (use num_train_epochs) or greater than 0, got -5",
        "per_device_train_batch_size: must be greater than 0, got 0",
        "num_generations: must be 2 or more",
        "data.frames: must be greater than 0, got 0",
        "data.path: file not found: nothere.csv",
        "rewards.funcs: unknown reward 'nope'",
        "reward_weights: 1 weights for 2 rewards.funcs",
        "report_to: the 'no_such_logger' logger is not installed",
    ]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, lines)
    assert len(lines) == len(expected)


def test_trl_level_problems_are_all_listed(capsys):
    code, _, err = _cli(
        capsys,
        "recipes",
        "validate",
        "qwen2_5_omni_7b/grpo_wheel",
        "train.max_steps=3",
        "top_k=abc",
        "beta=x",
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3
    assert "error: unknown recipe key 'train.max_steps'; did you mean 'max_steps'?" in lines
    assert any(line.startswith("error: top_k: input should be a valid integer") for line in lines)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
)


def test_yaml_bombs_are_refused_in_recipes_and_overrides(tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("method: sft\n" + BOMB)
    code, _, err = _cli(capsys, "recipes", "validate", str(bomb))
    assert code == 2 and "refused (alias bomb?)" in err and len(err.strip().splitlines()) == 1
    flow = "{" + BOMB.replace("\n", ", ").rstrip(", ") + "}"
    with pytest.raises(AffectReasonError, match="alias bomb"):
        load_recipe("qwen2_5_omni_3b/sft_lora", [f"model_init_kwargs={flow}"])
    loop = tmp_path / "loop.yaml"
    loop.write_text("method: sft\nx: &x [1, *x]\n")
    code, _, err = _cli(capsys, "recipes", "validate", str(loop))
    assert code == 2 and "refers to itself" in err
    deep = tmp_path / "deep.yaml"
    deep.write_text("method: sft\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    code, _, err = _cli(capsys, "recipes", "validate", str(deep))
    assert code == 2 and "nested" in err and len(err.strip().splitlines()) == 1


def test_unknown_methods_and_missing_method():
    with pytest.raises(AffectReasonError, match="unknown recipe method 'sfft'; did you mean 'sft'"):
        build_recipe({"method": "sfft"})
    with pytest.raises(AffectReasonError, match="no 'method' key"):
        build_recipe({"model": {"name_or_path": "x"}})


def test_recipes_cli_ls_show_cp_validate(tmp_path, capsys):
    code, out, _ = _cli(capsys, "recipes", "ls")
    assert code == 0 and "qwen2_5_omni_7b/sft_qlora" in out and "llava_next_video_7b/sft_lora" in out
    assert "accelerate" not in out

    code, out, _ = _cli(capsys, "recipes", "show", "qwen2_5_omni_7b/sft_lora", "learning_rate=3e-4")
    shown = yaml.safe_load(out)
    assert code == 0 and shown["learning_rate"] == pytest.approx(3e-4)
    assert shown["data"]["frames"] == 16 and "adam_beta1" in shown  # every trl field, defaults filled in
    for name in ("qwen2_5_omni_7b/grpo_wheel", "qwen2_5_vl_7b/dpo"):  # what `show` prints loads back the same
        code, out, _ = _cli(capsys, "recipes", "show", name, "max_steps=7")
        copy = tmp_path / "shown.yaml"
        copy.write_text(out)
        assert load_recipe(copy).args.to_dict() == load_recipe(name, ["max_steps=7"]).args.to_dict()

    dest = tmp_path / "my_sft.yaml"
    code, out, _ = _cli(capsys, "recipes", "cp", "qwen2_5_omni_7b/sft_lora", str(dest))
    source = recipes_dir() / "qwen2_5_omni_7b" / "sft_lora.yaml"
    assert code == 0 and dest.read_text() == source.read_text()  # comments (memory presets) kept
    code, _, err = _cli(capsys, "recipes", "cp", "qwen2_5_omni_7b/sft_lora", str(dest))
    assert code == 2 and "--force" in err

    code, out, _ = _cli(capsys, "recipes", "validate", str(dest), "output_dir=x")
    assert code == 0 and out.startswith("ok:")

    misspelt = tmp_path / "bad.yaml"
    misspelt.write_text(dest.read_text().replace("\nlearning_rate:", "\nlearning_rat:"))
    code, out, err = _cli(capsys, "recipes", "validate", str(misspelt))
    assert code == 2
    assert err.strip() == "error: unknown recipe key 'learning_rat'; did you mean 'learning_rate'?"

    code, _, err = _cli(capsys, "recipes", "show", "qwen2_5_omni_7b/sft_lroa")
    assert code == 2 and "did you mean 'qwen2_5_omni_7b/sft_lora'" in err


def test_recipe_file_errors(tmp_path, capsys):
    not_yaml = tmp_path / "x.yaml"
    not_yaml.write_text("method: sft\nmodel: [unclosed\n")
    code, _, err = _cli(capsys, "recipes", "validate", str(not_yaml))
    assert code == 2 and "not valid YAML" in err
    wrong_type = tmp_path / "y.yaml"
    wrong_type.write_text("method: sft\nmax_steps: [1, 2]\n")
    code, _, err = _cli(capsys, "recipes", "validate", str(wrong_type))
    assert code == 2 and "max_steps: input should be a valid integer" in err


def test_a_logger_that_is_not_installed_fails_before_the_model_loads(tmp_path, capsys):
    if importlib.util.find_spec("wandb"):
        pytest.skip("wandb is installed here")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"method: sft\nmodel: {{name_or_path: {tmp_path / 'no-model'}}}\n")
    code, _, err = _cli(capsys, "train", "sft", str(recipe), "report_to=[wandb]", "run_name=x")
    assert (
        code == 2
        and err.strip() == "error: report_to: the 'wandb' logger is not installed (pip install wandb)"
    )


def test_recipe_errors_carry_every_problem():
    with pytest.raises(RecipeError) as info:
        load_recipe("qwen2_5_omni_3b/sft_lora", ["learning_rate=-1", "lora.dropout=1.5"])
    assert info.value.problems == [
        "learning_rate: must be greater than 0, got -1",
        "lora.dropout: must be in [0, 1), got 1.5",
    ]


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3", "fsdp"])
def test_accelerate_configs_are_valid(name):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(recipes_dir() / "accelerate" / f"{name}.yaml"))
    expected = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}[name]
    assert config.distributed_type.value == expected
    assert config.mixed_precision == "bf16"
    if name.startswith("zero"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


def test_checking_a_recipe_leaves_deepspeed_alone_until_the_trainer_config(monkeypatch):
    """Under `accelerate launch` with DeepSpeed, a trl config registers ZeRO-3's load hook: the one built to check
    the recipe must not (the model loads before the trainer's config, as ZeRO-3 + our loader need)."""
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    recipe = load_recipe("qwen2_5_omni_3b/sft_lora")  # deepspeed is not installed here: a hook would fail
    assert recipe.args.deepspeed_plugin is None
    import os

    assert os.environ["ACCELERATE_USE_DEEPSPEED"] == "true"
    with pytest.raises(Exception, match="deepspeed"):
        recipe.trainer_args()  # the trainer's own config does set DeepSpeed up
