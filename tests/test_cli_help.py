"""What a person reads in the command line's help and in piped output (issue 14)."""

from __future__ import annotations

from click.testing import CliRunner

from seedtape.cli import main, serve, summary_of


def test_every_serve_option_says_what_it_does() -> None:
    missing = [p.opts[0] for p in serve.params if not getattr(p, "help", None) and p.name != "help"]
    assert missing == []


def test_command_summaries_are_whole_sentences() -> None:
    text = CliRunner().invoke(main, ["-h"], terminal_width=80).output
    commands = text.split("Commands:")[1]
    assert "..." not in commands
    for name, command in main.commands.items():  # type: ignore[attr-defined]
        summary = summary_of(command)
        assert summary.endswith("."), (name, summary)
        assert " ".join(summary.split()[-3:]) in " ".join(commands.split()), name


def test_demo_piped_keeps_its_diff_readable_without_colour() -> None:
    output = CliRunner().invoke(main, ["demo"]).output  # not a terminal: no colour codes
    assert "\x1b[" not in output
    diff = output.split("first difference at word")[1].split("With seed=42")[0]
    assert "[-" in diff and "-]" in diff and "{+" in diff and "+}" in diff
