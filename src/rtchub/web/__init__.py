"""The browser app's files (plain ES modules, CSS, HTML), served as they are."""

from pathlib import Path
from typing import Final

__all__ = ["WEB_DIR"]

WEB_DIR: Final = Path(__file__).resolve().parent
