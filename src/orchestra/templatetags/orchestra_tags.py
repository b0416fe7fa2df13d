"""Template helpers for Orchestra's pages: readable task data, status classes, durations."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

register = template.Library()

_IMAGE = re.compile(r"\.(png|jpe?g|gif|webp|svg)(\?.*)?$", re.IGNORECASE)
_MAX_DEPTH = 6


def _label(key: Any) -> str:
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:]


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and " " not in value and "\n" not in value


def _file(value: dict[str, Any]) -> SafeString | None:
    url, name = value.get("url") or value.get("src"), value.get("filename") or value.get("name")
    if not isinstance(url, str) or not _is_url(url):
        return None
    caption = str(name or url.rsplit("/", 1)[-1])
    if _IMAGE.search(url) or str(value.get("content_type", "")).startswith("image/"):
        return format_html(
            '<figure><a href="{0}"><img src="{0}" alt="{1}" loading="lazy"></a>'
            '<figcaption class="muted">{1}</figcaption></figure>',
            url,
            caption,
        )
    return format_html('<a href="{}">{}</a>', url, caption)


def _render(value: Any, depth: int) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return '<span class="muted">—</span>'
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (int, float)):
        return escape(str(value))
    if isinstance(value, str):
        if _is_url(value):
            if _IMAGE.search(value):
                return format_html('<a href="{0}"><img src="{0}" alt="" loading="lazy"></a>', value)
            return format_html('<a href="{0}">{0}</a>', value)
        return format_html("<pre>{}</pre>", value) if "\n" in value else escape(value)
    if depth >= _MAX_DEPTH:
        return escape(str(value)[:500])
    if isinstance(value, dict):
        as_file = _file(value)
        if as_file is not None:
            return as_file
        rows = "".join(f"<dt>{escape(_label(k))}</dt><dd>{_render(v, depth + 1)}</dd>" for k, v in value.items())
        return f"<dl>{rows}</dl>"
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{_render(v, depth + 1)}</li>" for v in value) + "</ul>"
    return escape(str(value))


@register.filter
def data(value: Any) -> SafeString:
    """Task data or project data as HTML: nested objects as definition lists, URLs as links, image URLs
    and uploaded images as pictures, files as links, multi-line text kept as written."""
    return mark_safe(f'<div class="data">{_render(value, 0)}</div>')  # noqa: S308 - every value escaped in _render


@register.filter
def status_class(status: Any) -> str:
    return "status-" + slugify(str(status or "none"))


@register.filter
def hms(value: dt.timedelta | int | None) -> str:
    seconds = int(value.total_seconds()) if isinstance(value, dt.timedelta) else int(value or 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@register.filter
def label(key: Any) -> str:
    return _label(key)


@register.filter
def get(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def when(value: Any) -> str:
    """An ISO timestamp or datetime as 'YYYY-MM-DD HH:MM' (UTC)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return ""


@register.filter
def first_line(value: Any) -> str:
    """The first non-blank line of a text (an error's message, without its traceback)."""
    return next((line for line in str(value or "").splitlines() if line.strip()), "")
