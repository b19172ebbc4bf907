"""Number boxes that take a number typed past their range as the nearest end of it."""
from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


class _ClampTyped:
    """QSpinBox and QDoubleSpinBox refuse a keystroke that would take their text past the
    maximum: "500" typed into the mosaic's box (at most 40) read "50", then "5" once "0" was
    refused; "50" in the learning rate's (at most 1) kept only the "5".  These boxes let such a
    number stand while it is typed and, at Enter or when the focus leaves, take the end of the
    range it passed, as the arrows stop there."""

    def _number(self, text: str) -> float | None:
        """The number ``text`` spells in the box's locale, prefix, suffix and group separators
        aside (None if it spells none)."""
        core = text.removeprefix(self.prefix()).removesuffix(self.suffix())
        core = core.replace(self.locale().groupSeparator(), "").strip()
        value, ok = self.locale().toDouble(core)
        return value if ok else None

    def validate(self, text: str, pos: int) -> object:
        state = super().validate(text, pos)
        if (state[0] if isinstance(state, tuple) else state) == QValidator.State.Invalid \
                and self._number(text) is not None:
            return QValidator.State.Intermediate, text, pos
        return state

    def fixup(self, text: str) -> str:
        number = self._number(text)
        if number is None:
            return super().fixup(text)
        value = min(max(number, self.minimum()), self.maximum())
        if isinstance(self, QSpinBox):
            value = round(value)
        return self.prefix() + self.textFromValue(value) + self.suffix()


class SpinBox(_ClampTyped, QSpinBox):
    """A whole-number box (a fraction typed is rounded at Enter)."""


class DoubleSpinBox(_ClampTyped, QDoubleSpinBox):
    """A decimal box."""
