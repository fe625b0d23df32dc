"""The README's code runs: every ```python block is executed, and the Syntax section's commands exit 0."""
from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str, text: str | None = None) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text if text is not None else README.read_text(), re.DOTALL)


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_readme_python_blocks_run(number):
    code = blocks("python")[number]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {number}", "exec"), {"__name__": "__readme__"})  # noqa: S102 - the README's own code
    assert out.getvalue().strip(), "each README example prints its result"


def test_readme_syntax_section_commands_exit_0():
    from pde2gen.cli import main

    section = README.read_text().split("## Syntax", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for block in blocks("bash", section) for line in block.splitlines()]
    commands = [c for c in commands if c.startswith("pde2gen ")]
    assert len(commands) >= 3
    for command in commands:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(shlex.split(command)[1:]) == 0, command
