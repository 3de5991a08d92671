"""`--help` of every command: exit 0, plain text, every option explained with its default;
`--version`; progress bars only on a terminal."""

import argparse

import pytest

from bitmill import __version__
from bitmill.cli.app import build_parser


def _commands(parser=None, path=()):
    """(command path, parser) of every parser, the top one included."""
    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


COMMANDS = [path for path, _ in _commands()]
PARSERS = dict(_commands())
# options whose help text is still missing: (command path) -> option strings
def test_every_command_is_walked():
    assert {("golden",), ("eval",), ("simulate",), ("hw", "synth"), ("config", "check")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "bitmill")
def test_help_exits_0_with_plain_text(run_cli, path):
    status, out, err = run_cli(*path, "--help")
    assert status == 0 and err == ""
    assert out.startswith(f"usage: bitmill{''.join(' ' + p for p in path)}")
    assert "``" not in out


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "bitmill")
def test_every_option_has_help_and_shows_its_default(run_cli, path):
    _, out, _ = run_cli(*path, "--help")
    for action in PARSERS[path]._actions:
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):       # each command has its line
            assert all(c.help for c in action._choices_actions) and action._choices_actions
            continue
        assert action.help and action.help is not argparse.SUPPRESS, (path, name)
        shown = all(action.default is not v for v in (None, False, argparse.SUPPRESS))
        if action.option_strings and shown:
            assert f"(default: {action.default})" in " ".join(out.split()), (path, name)
            assert f"(default: {action.default})" not in action.help, (path, name)     # the formatter adds it


def test_option_lines_of_golden_help_carry_their_text(run_cli):
    _, out, _ = run_cli("golden", "--help")
    assert "--batch BATCH         random images per run, 1..4096 (ignored with --input)" in out
    text = " ".join(out.split())
    assert "(default: w8a8)" in text and "(default: 0)" in text and "(default: 1)" in text


def test_version(run_cli):
    assert __version__ == "0.1.0"
    assert run_cli("--version") == (0, "bitmill 0.1.0\n", "")


def test_simulate_writes_no_progress_bar_off_a_terminal(run_cli):
    status, out, err = run_cli("simulate", "--model", "resnet8", "--bits", "w4a4", "--config", "sim-4x4-k16")
    assert status == 0 and "bit-exact" in out
    assert err == ""


def test_training_writes_no_progress_bar_off_a_terminal(run_cli, tmp_path):
    status, out, err = run_cli("train", "--model", "resnet8", "--width", "4", "--dataset", "synthetic",
                               "--train-subset", "64", "--test-subset", "16", "--batch-size", "32",
                               "--quantizer", "fp", "--out", tmp_path / "run")
    assert status == 0, err
    assert "epoch 1/1: loss" in out
    assert err == ""
