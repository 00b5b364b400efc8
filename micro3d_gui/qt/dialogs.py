"""Message boxes shared by all panels (tests monkeypatch :func:`show_error` to record calls)."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    """A modal critical message box: ``text`` is a sentence for the user, never a traceback."""
    QMessageBox.critical(parent, title, text)


def error_text(exc: BaseException) -> str:
    """What to tell the user about ``exc``: our InputErrors already are full sentences."""
    from ..errors import InputError

    if isinstance(exc, InputError):
        return str(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def ask(parent: QWidget | None, title: str, text: str) -> bool:
    """A Yes / No question (default No); True for Yes."""
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_save_changes(parent: QWidget | None, title: str, text: str) -> str:
    """Save / Discard / Cancel (default Save): ``"save"``, ``"discard"`` or ``"cancel"``
    (closing the box is Cancel)."""
    buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
               | QMessageBox.StandardButton.Cancel)
    answer = QMessageBox.question(parent, title, text, buttons,
                                  QMessageBox.StandardButton.Save)
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(answer, "cancel")
