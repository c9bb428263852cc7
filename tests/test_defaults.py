"""One source of defaults: every CLI option's default is the field of a config in ganrobust.config
that the library uses too, so the API and the command line can never drift apart."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import click
import pytest

from ganrobust import config, conventions
from ganrobust.cli.main import cli
from ganrobust.config import (AUDIT_ROBUST_D_STEPS, COMPARE_OUT, DEVICE, TRAINER_WATCH, AuditConfig, CompareConfig,
                              DemoConfig, TrainConfig)

# command -> option name -> the config value it must default to
SOURCES: dict[str, dict[str, Any]] = {
    "audit": {"seed": AuditConfig.seed, "n_probes": AuditConfig.n_probes, "eps": AuditConfig.eps,
              "k_steps": AuditConfig.k_steps, "g_lr": AuditConfig.g_lr, "g_betas": AuditConfig.g_betas,
              "robust_d": AUDIT_ROBUST_D_STEPS, "precision": AuditConfig.precision, "device": DEVICE},
    "compare": {"out": COMPARE_OUT, "quality_samples": CompareConfig.quality_samples,
                "robustness_samples": CompareConfig.robustness_samples, "eps": CompareConfig.eps,
                "classifier_steps": CompareConfig.classifier_steps, "seed": CompareConfig.seed, "device": DEVICE},
    "demo": {"steps": DemoConfig.steps, "seed": DemoConfig.seed, "device": DemoConfig.device,
             "every": DemoConfig.every, "robust_d": DemoConfig.robust_d, "precision": DemoConfig.precision,
             "out": DemoConfig.out, "snapshot_every": DemoConfig.snapshot_every},
    "train": {"data": TrainConfig.data, "steps": TrainConfig.steps, "d_training": TrainConfig.d_training,
              "d_eps": TrainConfig.d_eps, "d_steps": TrainConfig.d_steps, "d_gamma": TrainConfig.d_gamma,
              "loss": TrainConfig.loss, "batch": TrainConfig.batch, "lr": TrainConfig.lr, "seed": TrainConfig.seed,
              "every": TRAINER_WATCH.every, "snapshot_every": TRAINER_WATCH.snapshot_every,
              "bn": TRAINER_WATCH.bn, "device": TrainConfig.device, "precision": TrainConfig.precision},
}


def _as_option(value: Any) -> Any:
    """A config value the way a click option carries it."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return value


def _options(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name is not None}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_cli_default_is_its_config_field(name: str) -> None:
    options = _options(cli.commands[name])
    for option, value in SOURCES[name].items():
        default = options[option].default
        expected = _as_option(value)
        if isinstance(expected, Path):
            default = Path(default)
        assert default == expected, f"ganrobust {name} --{option.replace('_', '-')} defaults to {default!r}, " \
                                    f"its config to {expected!r}"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_no_option_default_is_written_in_the_cli(name: str) -> None:
    """An option with a value default (not a flag, not "as recorded") takes it from ganrobust.config:
    each is listed in SOURCES, so a default typed into a click decorator fails here."""
    unset = getattr(click.core, "UNSET", None)  # click >= 8.3 marks "no default" with a sentinel
    unlisted = [f"--{n.replace('_', '-')}={o.default!r}" for n, o in _options(cli.commands[name]).items()
                if not o.is_flag and o.default is not None and o.default is not unset and not o.multiple
                and n not in SOURCES.get(name, {})]
    assert not unlisted, f"ganrobust {name}: defaults not taken from ganrobust.config: {unlisted}"


def test_the_library_and_the_cli_share_the_trainer_and_demo_defaults(tmp_path) -> None:
    """The values the commands default to are the ones the library runs with."""
    from ganrobust.runs import read_run
    from ganrobust.train import train

    assert DemoConfig().train() == TrainConfig(steps=DemoConfig.steps, seed=DemoConfig.seed,
                                               precision=DemoConfig.precision)
    assert DemoConfig().audit() == AuditConfig()
    assert DemoConfig().watch().bn is TRAINER_WATCH.bn
    assert config.EPS == AuditConfig.eps == CompareConfig.eps == TrainConfig.d_eps == config.WatchConfig.eps
    # train() without a watch config watches as `ganrobust train` does
    train(TrainConfig(arch="mlp", data="8gaussians", steps=2, batch=8, nz=2, n_data=64), run_dir=tmp_path / "run")
    recorded = read_run(tmp_path / "run").manifest["config"]
    assert {k: recorded[k] for k in ("bn", "snapshot_every", "every")} == \
        {"bn": TRAINER_WATCH.bn.value, "snapshot_every": TRAINER_WATCH.snapshot_every, "every": TRAINER_WATCH.every}


#: every choice list of the CLI: an enum of ganrobust.conventions or a tuple of ganrobust.config
VOCABULARIES: list[tuple[str, ...]] = [
    tuple(v.value for v in e) for e in (conventions.Norm, conventions.Direction, conventions.ScoreKind,
                                        conventions.BatchNormMode, conventions.Precision)
] + [tuple(v.value for v in conventions.BatchNormMode if v is not conventions.BatchNormMode.AUTO),
     config.ARCHS, config.G_LOSSES, config.D_LOSSES, config.D_TRAINING_METHODS]


@pytest.mark.parametrize("name", sorted(SOURCES) + ["report"])
def test_every_choice_list_is_an_enum_or_a_config_tuple(name: str) -> None:
    """A new enum member (a norm, a precision, a BatchNorm mode) reaches every option that offers it."""
    command = cli.commands[name]
    choices = {p.name: tuple(p.type.choices) for p in command.params if isinstance(p.type, click.Choice)}
    for option, values in choices.items():
        assert values in VOCABULARIES, f"{name} --{option}: {values} is written in the CLI, not taken from an enum"
    if name in ("audit", "train"):
        assert choices, name


def test_no_choice_list_is_written_out_in_the_cli() -> None:
    """Choice lists are built by ``ganrobust.cli.common.choice`` from an enum or a config tuple only."""
    import ganrobust.cli as package

    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        if path.name != "common.py":
            assert "click.Choice(" not in path.read_text(), f"{path.name} writes a click.Choice of its own"
