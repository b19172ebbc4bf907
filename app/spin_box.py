"""A whole-number box that takes a number typed past its range as the nearest end of it."""
from __future__ import annotations

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QSpinBox


class SpinBox(QSpinBox):
    """QSpinBox refuses a keystroke that would take its text past the maximum: "500" typed into
    the mosaic's box (at most 64) read "50", then "5" once "0" was refused.  This box lets such
    a number stand while it is typed and, at Enter or when the focus leaves, takes the end of
    the range it passed (64), as the arrows stop there."""

    def _number(self, text: str) -> int | None:
        """The whole number ``text`` spells, prefix, suffix and group separators aside."""
        core = text.removeprefix(self.prefix()).removesuffix(self.suffix())
        core = core.replace(self.locale().groupSeparator(), "").strip()
        try:
            return int(core)
        except ValueError:
            return None

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
        return self.prefix() + self.textFromValue(value) + self.suffix()
