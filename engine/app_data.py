"""The app's data folder, found without Qt (the engine never imports it).

The GUI names its application and organization "Neural Canvas" (``gui/app.py``) and keeps its
recovery files and the runs of untitled documents under Qt's ``AppDataLocation``
(``gui/autosave.py``, ``gui/training/session.py``). :func:`app_data_dir` computes the same
folder the way Qt does, so engine code (the personal block library) lives beside them:

- Linux and other Unix: ``$XDG_DATA_HOME`` (when an absolute path) else ``~/.local/share``,
  then ``Neural Canvas/Neural Canvas``;
- macOS: ``~/Library/Application Support/Neural Canvas/Neural Canvas``;
- Windows: ``%APPDATA%\\Neural Canvas\\Neural Canvas``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The application name the GUI gives Qt.
APP_NAME = "Neural Canvas"
#: The organization name the GUI gives Qt.
ORGANIZATION_NAME = "Neural Canvas"


def app_data_dir() -> Path:
    """The folder Qt's ``QStandardPaths.AppDataLocation`` names for the app (not created here).

    Returns:
        ``<platform data folder>/Neural Canvas/Neural Canvas``.
    """
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else home / ".local" / "share"
    return base / ORGANIZATION_NAME / APP_NAME
