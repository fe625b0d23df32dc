"""The CLI end to end: exit codes, one-line errors (never a traceback), JSON reports."""
import json
import subprocess
import sys

import pytest


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pde2gen", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args, code",
    [
        (("check", "diffusion", "--dim", "3072"), 0),
        (("check", "wave+damping", "--dim", "1"), 0),
        (("check", "wave+damping", "--dim", "2"), 1),
        (("check", "wave+damping", "--dim", "2", "--construction", "product"), 0),
        (("check", "u_tt + 2*a*u_t = c**2*lap(u)", "--param", "a=9", "--param", "c=3", "--dim", "1"), 0),
        (("check", "hyperdiffusion"), 1),
    ],
)
def test_check_exit_code_is_the_verdict(args, code):
    result = run(*args)
    assert result.returncode == code, result.stdout + result.stderr
    assert "verdict" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("check", "u_t = u**2"), "not linear"),
        (("check", "__import__('os').system('echo pwned')"), "not allowed"),
        (("check", "u_t = x*lap(u)"), "error[parse]"),
        (("check", "wavee"), "did you mean 'wave'"),
        (("check", ""), "empty"),
        (("check", "u_t = lap(u)", "--param", "oops"), "name=value"),
        (("check", "u_t = lap(u)", "--dim", "0"), "--dim"),
        (("check", "u_t = = lap(u)"), "error[parse]"),
        (("check", "lap(u) = 0"), "time derivative"),
        (("check", "x" * 100_000), "error[parse]"),
        (("frobnicate",), "error[usage]"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args, fragment):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error[")
    assert fragment in result.stderr


def test_json_report_carries_the_computed_witness():
    result = run("check", "hyperdiffusion", "--dim", "1", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    c1 = next(c for c in data["conditions"] if c["name"] == "C1")
    assert c1["status"] == "FAIL"
    # physics.md §2: the 1-D kernel of u_t = -lap^2 u at t = 1 has minimum -0.0298 at |x| ~ 4.59.
    assert abs(c1["witness"]["p"] - (-0.0298)) < 5e-4
    assert abs(abs(c1["witness"]["x"]) - 4.59) < 0.05


def test_catalog_lists_every_entry_with_computed_verdicts():
    result = run("catalog", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["diffusion"]["s_generative"] is True
    assert rows["kac"]["s_generative"] is True
    assert rows["wave"]["s_generative"] is False
    assert rows["damping"]["kind"] == "term"


def test_show_stage_parse_prints_the_symbol():
    result = run("show", "wave+damping", "--stage", "parse")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["symbol"].replace(" ", "") in {"2*a*lambda+c**2*s+lambda**2", "lambda**2+2*a*lambda+c**2*s"}


def test_verbose_shows_stage_timings():
    result = run("check", "diffusion", "--verbose")
    assert result.returncode == 0
    assert "timings" in result.stdout and "ghat" in result.stdout
