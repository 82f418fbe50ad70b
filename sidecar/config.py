"""The configuration's entry points, for callers that need only these: the modules behind them are in
``sidecar.settings`` (see its docstring for which rule lives where)."""

from __future__ import annotations

from sidecar.settings.load import load_settings, logging_preferences, settings_from
from sidecar.settings.model import Entry, Settings

__all__ = ["Entry", "Settings", "load_settings", "logging_preferences", "settings_from"]
