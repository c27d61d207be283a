"""The one error of the export doors: a model holds a part that the chosen format cannot express."""
from __future__ import annotations


class NotExportable(ValueError):
    """The message says which part and why, and what to do instead when there is a choice."""
