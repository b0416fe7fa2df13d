"""Django's SQLite backend, with each statement's placeholder conversion done once instead of on every run.

Django's SQLite cursor turns `%s` into `?` with a regular expression on every execute, however often the
same statement runs: 2.5% of a diamond project's time in benchmarks/engine.py. The lifecycle services run a
few dozen statements over and over (their SQL is built once and kept), so the converted text is kept too.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db.backends.sqlite3 import base

__all__ = ["DatabaseWrapper"]


@functools.lru_cache(maxsize=2048)
def _qmark(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class _Cursor(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is None:
            return _qmark(query)
        return str(super().convert_query(query, param_names=param_names))


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=_Cursor)
