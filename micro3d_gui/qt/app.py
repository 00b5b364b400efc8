"""QApplication set-up and the ``micro3d-gui`` entry point.

``micro3d-gui [PROJECT_DIR] [--model MODEL.pt]``: open a project folder and / or preload a
model; with neither, :meth:`MainWindow.open_demo` loads the bundled demo when it is
installed (it does nothing otherwise). Options are parsed with Qt's own
``QCommandLineParser`` (argparse belongs to the ``micro3d`` command only).
"""
from __future__ import annotations

import sys

from PySide6.QtCore import QCommandLineOption, QCommandLineParser, QSettings
from PySide6.QtWidgets import QApplication

from .project import APPLICATION, ORGANIZATION

DESCRIPTION = ("Micro3D: 3D microstructures from 2D micrographs of three planes "
               "(xy, xz, yz) with one plane-conditional diffusion model.")


def build_parser() -> tuple[QCommandLineParser, QCommandLineOption]:
    parser = QCommandLineParser()
    parser.setApplicationDescription(DESCRIPTION)
    parser.addHelpOption()
    model = QCommandLineOption(["m", "model"], "Preload this trained model.", "MODEL.pt")
    parser.addOption(model)
    parser.addPositionalArgument("project", "Project folder to open.", "[PROJECT_DIR]")
    return parser, model


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (the existing one if any), named for QSettings."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Micro3D")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    return app


def main(argv: list[str] | None = None) -> int:
    """Run the desktop app; ``argv`` without the program name (default: ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser, model_option = build_parser()
    if "-h" in args or "--help" in args or "-?" in args:
        # No QApplication (or display) is needed for the help.
        print(parser.helpText().replace("<executable_name>", "micro3d-gui"))
        return 0
    prog = sys.argv[0] if sys.argv else "micro3d-gui"
    existing = QApplication.instance() is not None
    app = create_app([prog, *args])
    # A new QApplication removed its own options (-platform ...) from arguments(); an
    # existing one (a test, a notebook) holds someone else's, so ours are parsed as given.
    if not parser.parse([prog, *args] if existing else app.arguments()):
        print(f"micro3d-gui: error: {parser.errorText()}", file=sys.stderr)
        return 2
    positional = parser.positionalArguments()
    if len(positional) > 1:
        print("micro3d-gui: error: give at most one project folder", file=sys.stderr)
        return 2

    from .main_window import MainWindow

    window = MainWindow()
    window.show()
    if positional:
        window.open_project(positional[0])
    if parser.isSet(model_option):
        window.preload_model(parser.value(model_option))
    if not positional and not parser.isSet(model_option):
        window.open_demo()
    return app.exec()
