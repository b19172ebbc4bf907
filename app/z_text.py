"""How the app writes a latent point: three decimals at the scale of real codes, and a short
form for the huge values a user can type or zoom to (1e300 written out in full took a dock's
whole width and pushed the map aside)."""
from __future__ import annotations

PLAIN_BELOW = 1e5  # |value| under this: fixed-point with three decimals


def z_number(value: float, signed: bool = False) -> str:
    """One coordinate: ``0.125``, or ``1.235e+06`` once fixed-point would grow long.  A value
    that rounds to zero is written ``0.000`` (``+0.000``), never ``-0.000``."""
    if abs(value) < PLAIN_BELOW:
        if round(value, 3) == 0:
            value = 0.0
        return f"{value:+.3f}" if signed else f"{value:.3f}"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def z_pair(x: float, y: float) -> str:
    """``(x, y)`` for labels."""
    return f"({z_number(x)}, {z_number(y)})"
