"""tssctl's grammar is self-documenting: every option of every subcommand has help text (with its
default shown), `--version` prints the installed version, and `approve` never approves what
nobody confirmed."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from coordinator import cli_officer
from coordinator.cli import main
from coordinator.cli_errors import EXIT_USAGE, UsageError
from coordinator.cli_parser import build_parser


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand's parser below it, at any depth."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    return [
        f"{p.prog} {'/'.join(a.option_strings) or a.dest}"
        for p in _parsers(parser)
        for a in p._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        and (a.help is None or not a.help.strip())
    ]


def test_every_argument_of_every_subcommand_has_help() -> None:
    assert len(list(_parsers(build_parser()))) >= 20  # the walk reaches nested subcommands
    assert _undocumented(build_parser()) == []


def test_the_walk_finds_an_argument_without_help() -> None:
    # The check above can fail: one undocumented option, deep in a subcommand, is named.
    parser = build_parser()
    key = next(p for p in _parsers(parser) if p.prog == "tssctl key create")
    key.add_argument("--undocumented")
    assert _undocumented(parser) == ["tssctl key create --undocumented"]


def test_defaults_are_shown_in_help() -> None:
    limit = next(p for p in _parsers(build_parser()) if p.prog == "tssctl request")
    assert "(default: 50)" in limit.format_help()


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"tssctl {version('tss-custody')}\n"


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["approve", "r1", "--officer", "officer-1", *extra])


def test_approve_without_a_terminal_refuses_unless_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin("y\n", tty=False))  # even a "y" on a pipe is not a confirmation
    with pytest.raises(UsageError, match="stdin is not a terminal") as refused:
        cli_officer.confirmation(_args())
    assert refused.value.code == EXIT_USAGE
    assert cli_officer.confirmation(_args("--yes")) is None


def test_approve_on_a_terminal_asks_and_only_yes_approves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin("", tty=True))
    assert cli_officer.confirmation(_args()) is cli_officer._confirm
    assert cli_officer.confirmation(_args("--json")) is cli_officer._confirm  # --json does not skip the question


def test_approve_refusal_exits_2_before_asking_the_coordinator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coordinator import officer

    key = tmp_path / "officer-1.key"
    officer.write_key(key)
    monkeypatch.setattr("sys.stdin", _Stdin("", tty=False))
    rc = main(["approve", "r1", "--officer", "officer-1", "--key", str(key), "--dir", str(tmp_path)])
    assert rc == EXIT_USAGE
    assert capsys.readouterr().err.startswith("tssctl: approve: stdin is not a terminal")


@pytest.mark.parametrize(
    ("answer", "approved"), [("y\n", True), ("YES\n", True), ("\n", False), ("", False), ("n\n", False)]
)
def test_the_prompt_approves_only_on_yes_and_writes_to_stderr(
    answer: str, approved: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from types import SimpleNamespace

    review = SimpleNamespace(
        intent=SimpleNamespace(describe=lambda: "withdraw 1 ETH to 0xdEaD"),
        request=SimpleNamespace(request_state=2, policy_reason="approvals_pending", replaces_request_id=""),
    )
    monkeypatch.setattr("sys.stdin", _Stdin(answer, tty=True))
    assert cli_officer._confirm(review) is approved  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert out == "" and "withdraw 1 ETH to 0xdEaD" in err and "[y/N]" in err  # stdout stays JSON-clean
