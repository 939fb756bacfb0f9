"""Binome: real-user monitoring beacons beside marketing context, in PostgreSQL."""

from pathlib import Path

__version__ = "0.1.0"

# The checkout's root: sql/, js-snippet/dist/, dashboard/ and demo/ are read from here, so the
# project is installed editable (`pip install -e .`), as the Makefile and the
# Dockerfile do.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
