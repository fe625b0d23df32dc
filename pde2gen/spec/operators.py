"""Unevaluated spatial operators for writing PDEs in SymPy.

``Laplacian(u)`` is the Laplacian in all N space dimensions (``Laplacian(u, n)`` its n-th power, the same as
n nested ``Laplacian`` calls), ``FractionalLaplacian(u, beta)`` is (-Laplacian)**beta and
``RelativisticLaplacian(u, m)`` is sqrt(-Laplacian + m**2) - m, the screened square root.  All stay
unevaluated: the parse stage reads them structurally.  Time derivatives commute with them (constant
coefficients), so ``Laplacian(u).diff(t)`` is ``Laplacian(u.diff(t))`` rather than SymPy's chain rule.
"""
from __future__ import annotations

import sympy as sp

from ..errors import ParseError


class Laplacian(sp.Function):
    """``Laplacian(f)`` = sum_i d^2 f / dx_i^2 in N dimensions; ``Laplacian(f, n)`` = Laplacian^n f."""

    nargs = (1, 2)

    @classmethod
    def eval(cls, operand, power=None):
        if power is not None:
            power = sp.sympify(power)
            if not (power.is_Integer and power >= 0):
                raise ParseError(f"Laplacian power must be a non-negative integer, got {power}",
                                 hint="use FractionalLaplacian(u, beta) for (-Laplacian)**beta")
            if power == 0:
                return operand
            if power == 1:
                return cls(operand)
        if operand.is_zero:
            return sp.S.Zero
        return None

    @property
    def power(self) -> sp.Integer:
        return self.args[1] if len(self.args) == 2 else sp.S.One

    def _eval_derivative(self, symbol):
        return self.func(self.args[0].diff(symbol), *self.args[1:])

    def _latex(self, printer):
        inner = printer._print(self.args[0])
        power = "" if self.power == 1 else f"^{{{printer._print(self.power)}}}"
        return rf"\Delta{power} {inner}"


class FractionalLaplacian(sp.Function):
    """``FractionalLaplacian(f, beta)`` = (-Laplacian)**beta f, with Fourier symbol |k|**(2 beta)."""

    nargs = 2

    @classmethod
    def eval(cls, operand, beta):
        if beta.is_zero:
            return operand
        if operand.is_zero:
            return sp.S.Zero
        return None

    @property
    def beta(self) -> sp.Expr:
        return self.args[1]

    def _eval_derivative(self, symbol):
        return self.func(self.args[0].diff(symbol), self.args[1])

    def _latex(self, printer):
        return rf"(-\Delta)^{{{printer._print(self.beta)}}} {printer._print(self.args[0])}"


class RelativisticLaplacian(sp.Function):
    """``RelativisticLaplacian(f, m)`` = (sqrt(-Laplacian + m**2) - m) f, Fourier symbol sqrt(|k|**2 + m**2) - m
    (m >= 0; m = 0 is (-Laplacian)**(1/2)): the free relativistic energy less the rest mass, whose semigroup
    is the normal-inverse-Gaussian law (the Yukawa kernel of the augmented problem)."""

    nargs = 2

    @classmethod
    def eval(cls, operand, mass):
        if operand.is_zero:
            return sp.S.Zero
        return None

    @property
    def mass(self) -> sp.Expr:
        return self.args[1]

    def _eval_derivative(self, symbol):
        return self.func(self.args[0].diff(symbol), self.args[1])

    def _latex(self, printer):
        m, square = printer._print(self.mass), printer._print(self.mass**2)
        return rf"\left(\sqrt{{-\Delta + {square}}} - {m}\right) {printer._print(self.args[0])}"
