"""Qt-free session logic shared by the CLI and the app."""
