"""The main window's menu bar: File, Run, View and Help, with their keyboard shortcuts."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from . import help_texts


def build_menus(window: QMainWindow) -> None:
    """Fill the menu bar of ``window`` (:class:`~.main_window.MainWindow`): every action in
    ``window.actions`` by key (the shortcuts help lists them; tests trigger them), the
    Recent projects submenu as ``window.recent_menu``."""
    file_menu = window.menuBar().addMenu("&File")
    window.actions = {}  # key -> QAction

    def action(key, text, slot, shortcut=None, menu=file_menu):
        a = QAction(text, window)
        if shortcut is not None:
            a.setShortcut(shortcut)
        # (the slot gets no arguments: ``triggered`` would pass its ``checked`` flag
        # as the first, e.g. as the folder of save_project)
        a.triggered.connect(lambda _checked=False, slot=slot: slot())
        menu.addAction(a)
        window.actions[key] = a
        return a

    action("new", "&New project", window.new_project, QKeySequence.StandardKey.New)
    action("open", "&Open project...", window.ask_open_project, QKeySequence.StandardKey.Open)
    window.recent_menu = file_menu.addMenu("Recent projects")
    window.recent_menu.aboutToShow.connect(window._fill_recent_menu)
    action("save", "&Save project", window.save_project, QKeySequence.StandardKey.Save)
    action("save_as", "Save project &as...", window.ask_save_project_as,
           QKeySequence.StandardKey.SaveAs)
    file_menu.addSeparator()
    action("load_model", "Load &model...", window.ask_load_model)
    action("export", "&Export volumes...", window.export_volumes,
           QKeySequence("Ctrl+E"))
    file_menu.addSeparator()
    action("quit", "&Quit", window.close, QKeySequence.StandardKey.Quit)

    run_menu = window.menuBar().addMenu("&Run")
    action("generate", "&Generate", window.generate_panel.start, QKeySequence("Ctrl+G"),
           menu=run_menu)
    action("analyse", "&Analyse", lambda: window.analyse(
        window.analysis_panel.properties_check.isChecked()), QKeySequence("Ctrl+Shift+A"),
        menu=run_menu)
    action("train", "&Train", lambda: window.train_panel.start(resume=False),
           QKeySequence("Ctrl+T"), menu=run_menu)

    view_menu = window.menuBar().addMenu("&View")
    for dock in window.docks.values():
        view_menu.addAction(dock.toggleViewAction())
    view_menu.addSeparator()
    action("reset_layout", "&Reset layout", window.reset_layout, menu=view_menu)
    action("reset_camera", "Reset &camera", window.viewport.reset_camera,
           QKeySequence("Ctrl+R"), menu=view_menu)

    help_menu = window.menuBar().addMenu("&Help")
    action("quick_start", "&Quick start", lambda: help_texts.show(
        window, "Quick start", help_texts.QUICK_START), QKeySequence.StandardKey.HelpContents,
        menu=help_menu)
    action("shortcuts", "Keyboard &shortcuts", lambda: help_texts.show(
        window, "Keyboard shortcuts", help_texts.shortcuts_html(window.actions)),
        menu=help_menu)
    action("about", "&About Micro3D", lambda: help_texts.show(
        window, "About Micro3D", help_texts.about_html()), menu=help_menu)
