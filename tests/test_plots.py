"""pde2gen plot: the figures carry the physics (branches, smoothing gap, negative lobes, atoms, exact flow,
prior), the PNGs have the expected size and are not blank, and nonsensical plots are skipped with a reason."""
import math
import subprocess
import sys

import numpy as np
import pytest

from pde2gen.analysis.analyse import analyse
from pde2gen.cli import main
from pde2gen.report.plots import (
    DPI,
    FIGURE_SIZE,
    MIXTURE_2D,
    TRAJECTORIES,
    VELOCITY_FIGURE_SIZE,
    make_plots,
    plot_dispersion,
    plot_kernel,
    plot_prior,
    plot_velocity,
    write_plots,
)
from pde2gen.spec.parse import parse

# The analysis' reference witness (physics.md §2): the 1-D hyperdiffusion kernel at t = 1.
HYPERDIFFUSION_MIN, HYPERDIFFUSION_AT, HYPERDIFFUSION_ZERO = -0.0298, 4.59, 0.2885


def by_gid(figure, prefix):
    """Every artist of the figure whose gid starts with ``prefix``."""
    return [a for a in figure.findobj() if (a.get_gid() or "").startswith(prefix)]


# ---------------------------------------------------------------------------------------------- dispersion
def test_wave_dispersion_has_two_undamped_branches_and_no_smoothing(wave):
    figure = plot_dispersion(wave[0])
    re_lines, im_lines = by_gid(figure, "branch-re-"), by_gid(figure, "branch-im-")
    assert len(re_lines) == len(im_lines) == 2
    for line in re_lines:  # Re lambda = 0 for every k: the undamped branches
        assert np.all(line.get_ydata() == 0.0)
    k = im_lines[0].get_xdata()
    frequencies = sorted((np.asarray(line.get_ydata()) for line in im_lines), key=lambda y: y[-1])
    assert np.allclose(frequencies, [-k, k], rtol=1e-12)  # Im lambda = -+ c k with c = 1
    assert "branch 1: lambda = -I*c*sqrt(s)" in re_lines[0].get_label()
    assert by_gid(figure, "smoothing-fails") and not by_gid(figure, "smoothing-gap")
    (span,) = by_gid(figure, "smoothing-fails")  # one red band over the whole k-range
    assert np.isclose(span.get_x(), k[0]) and np.isclose(span.get_x() + span.get_width(), k[-1])
    assert "no mode is ever forgotten" in by_gid(figure, "no-smoothing")[0].get_text()


def test_diffusion_dispersion_is_minus_k_squared_with_a_green_gap(diffusion):
    figure = plot_dispersion(diffusion[0])
    (line,) = by_gid(figure, "branch-re-")
    assert np.allclose(line.get_ydata(), -line.get_xdata() ** 2, rtol=1e-12)
    assert by_gid(figure, "smoothing-gap") and not by_gid(figure, "smoothing-fails")
    assert "C2 PASS" in figure.axes[0].get_title()


@pytest.mark.parametrize("expr, dim, carrying",
                         [("poisson", 2, [True, False]), ("telegraph", 1, [True, True])])
def test_carrying_branches_are_solid_and_labelled(expr, dim, carrying):
    figure = plot_dispersion(analyse(parse(expr, dim=dim), repairs=False))
    lines = by_gid(figure, "branch-re-")
    assert [line.get_linestyle() == "-" for line in lines] == carrying
    assert ["carries no density" not in line.get_label() for line in lines] == carrying
    if expr == "poisson":  # PFGM keeps the decaying root -k
        kept = lines[carrying.index(True)]
        assert np.allclose(kept.get_ydata(), -kept.get_xdata(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------- kernel
def test_hyperdiffusion_kernel_shows_the_negative_lobe(hyperdiffusion):
    figure = plot_kernel(*hyperdiffusion)
    (ratio,) = by_gid(figure, "kernel-ratio-1")  # p(x, 1) / p(0, 1) on the linear panel
    x, y = ratio.get_xdata(), ratio.get_ydata()
    i = int(np.argmin(y))
    assert y[i] == pytest.approx(HYPERDIFFUSION_MIN / HYPERDIFFUSION_ZERO, rel=2e-3)
    assert x[i] == pytest.approx(HYPERDIFFUSION_AT, abs=0.02)
    negative = by_gid(figure, "kernel-negative-1")
    assert negative and np.any(np.isfinite(negative[0].get_ydata()))  # drawn in red on the log panel
    (note,) = by_gid(figure, "kernel-minimum-1")
    assert "min p = -0.0298" in note.get_text() and "|x| = 4.59" in note.get_text()
    title = figure.axes[0].get_title()
    assert "1-D marginal of the N = 2 kernel" in title and "C1 FAIL" in title


def test_wave_kernel_is_atoms_on_the_light_cone(wave):
    figure = plot_kernel(*wave)
    atoms = by_gid(figure, "kernel-atom-")
    assert len(atoms) == 3
    for atom, t in zip(atoms, (0.3, 1.0, 3.0)):  # d'Alembert: mass 1/2 at |x| = c t, nothing inside
        assert atom.get_xdata()[0] == pytest.approx(t)
        assert atom.get_ydata()[0] == pytest.approx(math.log10(0.5))
    for ratio in by_gid(figure, "kernel-ratio-"):
        assert np.all(ratio.get_ydata() == 0.0)


def test_diffusion_kernel_is_the_heat_kernel_along_a_ray(diffusion):
    figure = plot_kernel(*diffusion)
    profiles = by_gid(figure, "kernel-log-")
    assert len(profiles) == 3 and not by_gid(figure, "kernel-negative")
    for line in profiles:
        t = float(line.get_gid().removeprefix("kernel-log-"))
        r = line.get_xdata()
        heat = (-np.log(4 * np.pi * t) - r**2 / (4 * t)) / np.log(10)  # N = 2, kappa = 1
        assert np.allclose(line.get_ydata(), heat, rtol=1e-4, atol=1e-4)


def test_klein_gordon_kernel_with_negative_mass_is_drawn_unnormalised():
    figure = plot_kernel(analyse(parse("klein-gordon"), repairs=False))
    labels = [line.get_label() for line in by_gid(figure, "kernel-ratio-")]
    assert labels[:2] == ["t = 0.3", "t = 1"]  # mass cos(t) > 0
    assert labels[2] == f"t = 3 (mass {math.cos(3.0):.3g} <= 0: not normalised)"
    assert by_gid(figure, "kernel-negative-")  # the continuous part is negative inside the cone


def test_schrodinger_has_no_real_kernel_to_draw():
    made = make_plots(analyse(parse("schrodinger"), repairs=False))
    assert made["kernel"].startswith("ghat is complex (ghat(k = 1, t = 1) = 0.5403-0.8415j)")  # exp(-i k^2 t)
    assert not isinstance(made["dispersion"], str)


# ---------------------------------------------------------------------------------------------- flow, prior
def test_exact_flow_from_the_prior_lands_on_the_data(diffusion):
    figure = plot_velocity(*diffusion)
    assert len(by_gid(figure, "velocity-")) == 3
    assert len(by_gid(figure, "trajectory")) == TRAJECTORIES + 1  # paths + their end points
    (ends,) = by_gid(figure, "trajectory-end")
    ends = np.column_stack([ends.get_xdata(), ends.get_ydata()])
    distance = np.min(np.linalg.norm(ends[:, None] - MIXTURE_2D[None], axis=2), axis=1)
    assert np.max(distance) < 0.02  # sigma_min = 0.002: every path ends on a data point
    first = by_gid(figure, "trajectory")[0]
    assert np.hypot(first.get_xdata()[0], first.get_ydata()[0]) > 5  # ... and started in the prior (sigma 80)


def test_prior_matches_the_marginal_at_t_max(diffusion):
    figure = plot_prior(*diffusion)
    assert figure.ks_distance < 0.03
    (curve,) = by_gid(figure, "prior-density")
    mass = np.trapezoid(curve.get_ydata(), curve.get_xdata())
    assert 0.99 < mass < 1.0  # the density of log10 |x| over the 0.1 %-99.9 % range of the draws


def test_plots_that_make_no_sense_are_skipped_with_the_reason(hyperdiffusion, compiled):
    made = make_plots(*hyperdiffusion)
    assert not isinstance(made["dispersion"], str) and not isinstance(made["kernel"], str)
    for name in ("velocity", "prior"):
        what = "velocity field" if name == "velocity" else "prior"
        assert made[name] == f"the {what} needs a derived kernel family; the PDE is not s-generative " \
                             "(C1 FAIL)"
    three_d = make_plots(*compiled("diffusion", dim=3))
    assert three_d["velocity"] == "the velocity field is drawn in a plane: needs N = 2, got N = 3"
    assert not isinstance(three_d["prior"], str)


# ---------------------------------------------------------------------------------------------- PNGs, CLI
def _assert_png(path, size):
    from matplotlib.image import imread

    pixels = imread(path)[..., :3]
    assert pixels.shape[:2] == (round(size[1] * DPI), round(size[0] * DPI))
    non_white = np.mean(np.any(pixels < 0.95, axis=2))
    assert non_white > 0.04 and pixels.std() > 0.05, f"{path} looks blank"


def test_write_plots_saves_pngs_of_the_expected_size(diffusion, tmp_path):
    written = write_plots(*diffusion, tmp_path)
    assert [o.name for o in written] == ["dispersion", "kernel", "velocity", "prior"]
    for outcome in written:
        assert outcome.line() == f"wrote {tmp_path / (outcome.name + '.png')}"
        _assert_png(outcome.path, VELOCITY_FIGURE_SIZE if outcome.name == "velocity" else FIGURE_SIZE)


def test_cli_plot_of_a_failing_pde_writes_what_makes_sense(tmp_path, capsys):
    assert main(["plot", "wave", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'dispersion.png'}" in out and f"wrote {tmp_path / 'kernel.png'}" in out
    assert "skipped velocity.png: the velocity field needs a derived kernel family; the PDE is not " \
           "s-generative (C1 FAIL, C2 FAIL)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dispersion.png", "kernel.png"]
    _assert_png(tmp_path / "dispersion.png", FIGURE_SIZE)
    _assert_png(tmp_path / "kernel.png", FIGURE_SIZE)


def test_cli_plot_into_a_file_is_a_one_line_usage_error(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("")
    assert main(["plot", "wave", "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error[usage]: cannot write the plots to") and "Traceback" not in err


def test_importing_the_modules_loads_neither_matplotlib_nor_torch():
    code = ("import sys, pde2gen.report.plots, pde2gen.report.explain; "
            "print(sorted({'matplotlib', 'torch'} & set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         timeout=120)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr
