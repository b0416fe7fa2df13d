"""A step's declared form in HTML: decoding a posted form into task data, storing uploads, and the values
and errors each field is drawn with.

Validation is not here: the services check submitted data against the step's form (`engine.forms`), for
the API and the pages alike. This module only translates between HTML form fields and task data:

- a plain field posts under its name; a multichoice posts one value per ticked box;
- a list posts `<name>-count` and each item's fields as `<name>-<i>-<field>` (a `for_each` list also
  posts each item's key as `<name>-<i>-<key>`);
- a file or image field posts new files under its name and the stored files to drop as `<name>-remove`.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from PIL import Image, UnidentifiedImageError

from orchestra import files
from orchestra.engine.forms import FieldDef, FormDef, check_upload, empty_value, for_each_elements, upload_folder

MAX_ITEMS = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Uploads:
    """Files stored for one post: deleted again if the post fails, so nothing is left behind."""

    stored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        for name in self.stored:
            files.delete_file(name)

    def commit(self) -> None:
        for name in self.removed:
            files.delete_file(name)


def _scalar(field_def: FieldDef, post: QueryDict, name: str) -> Any:
    # An unticked checkbox posts nothing: "" is False to a boolean field and "no value" to the others.
    return post.getlist(name) if field_def.type == "multichoice" else post.get(name, "")


def _file_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _safe_filename(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    stem = _UNSAFE.sub("-", stem if dot else base).strip("-.") or "file"
    ext = _UNSAFE.sub("", ext).lower() if dot else ""
    return f"{stem[:80]}.{ext}" if ext else stem[:80]


def _store(folder: str, upload: UploadedFile, project_id: int) -> dict[str, Any]:
    filename = _safe_filename(upload.name or "file")
    stem, dot, ext = filename.rpartition(".")
    name, counter = f"{folder}/{filename}", 2
    while files.file_exists(name):
        name, counter = f"{folder}/{stem or filename}-{counter}{dot}{ext}", counter + 1
    files.save_file(name, upload.read(), project_id=project_id)
    content_type = upload.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return {
        "name": name,
        "url": files.file_url(name),
        "filename": upload.name,
        "size": upload.size,
        "content_type": content_type,
    }


def _files(
    field_def: FieldDef,
    post: QueryDict,
    uploaded: MultiValueDict[str, UploadedFile],
    current: Any,
    where: tuple[int, int, Mapping[str, Any]],
    uploads: Uploads,
) -> Any:
    name = field_def.name
    remove = set(post.getlist(f"{name}-remove"))
    kept = [f for f in _file_list(current) if f.get("name") not in remove]
    uploads.removed += [f["name"] for f in _file_list(current) if f.get("name") in remove]
    new = [u for u in uploaded.getlist(name) if u.name]
    problems = [p for u in new if (p := check_upload(field_def, u.name or "", u.size or 0))]
    if field_def.type == "image":
        problems += [
            f"{u.name} is not a readable image; upload a PNG, JPEG, GIF or WebP file." for u in new if not _is_image(u)
        ]
    if problems:
        uploads.errors[name] = " ".join(problems)
        return kept if field_def.multiple else (kept[0] if kept else None)
    if new:
        project_id, task_id, prerequisites = where
        try:
            folder = upload_folder(field_def, project_id=project_id, task_id=task_id, prerequisites=prerequisites)
        except ValueError as error:
            uploads.errors[name] = str(error)
            return kept if field_def.multiple else (kept[0] if kept else None)
        files.make_folder(folder)
        for upload in new if field_def.multiple else new[:1]:
            entry = _store(folder, upload, project_id)
            uploads.stored.append(entry["name"])
            kept.append(entry)
        if not field_def.multiple:
            uploads.removed += [f["name"] for f in kept[:-1]]
            kept = kept[-1:]
    if field_def.multiple:
        return kept
    return kept[0] if kept else None


def _is_image(upload: UploadedFile) -> bool:
    """Whether Pillow can read the upload (an image field's file must be a picture, whatever its name)."""
    try:
        with Image.open(upload) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    finally:
        upload.seek(0)
    return True


def _count(post: QueryDict, name: str) -> int:
    try:
        return max(0, min(int(post.get(f"{name}-count", "0")), MAX_ITEMS))
    except ValueError:
        return 0


def values_from_post(
    form: FormDef,
    post: QueryDict,
    uploaded: MultiValueDict[str, UploadedFile],
    *,
    current: Mapping[str, Any],
    project_id: int,
    task_id: int,
    prerequisites: Mapping[str, Any],
) -> tuple[dict[str, Any], Uploads]:
    """Task data from a posted form: the current data with every declared field replaced by what was posted.

    New uploads are stored at once (the caller discards them if the submission fails); files ticked for
    removal are only listed, and deleted by `Uploads.commit` once the submission succeeded.
    """
    values = dict(current)
    uploads = Uploads()
    for f in form.fields:
        if f.type in ("file", "image"):
            values[f.name] = _files(
                f, post, uploaded, current.get(f.name), (project_id, task_id, prerequisites), uploads
            )
        elif f.type == "list":
            items = []
            for i in range(_count(post, f.name)):
                prefix = f"{f.name}-{i}-"
                if post.get(prefix + "deleted"):
                    continue
                item = {sub.name: _scalar(sub, post, prefix + sub.name) for sub in f.fields}
                if f.for_each is not None:
                    item = {f.for_each.key: post.get(prefix + f.for_each.key, ""), **item}
                items.append(item)
            values[f.name] = items
        else:
            values[f.name] = _scalar(f, post, f.name)
    return values, uploads


# --- drawing ----------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None or isinstance(value, (list, dict)):
        return ""
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bound(f: FieldDef, value: Any, errors: Mapping[str, str], path: str, html_name: str) -> dict[str, Any]:
    selected = value if isinstance(value, list) else ([value] if value not in (None, "") else [])
    selected_text = {_text(v) for v in selected}
    bound: dict[str, Any] = {
        "def": f,
        "name": html_name,
        "id": "id-" + html_name,
        "value": _text(value),
        "checked": value is True or _text(value).lower() in ("true", "on", "1", "yes"),
        "error": errors.get(path, ""),
        "choices": [{"value": c.value, "label": c.label, "selected": c.value in selected_text} for c in f.choices],
        "files": _file_list(value),
    }
    if f.type == "rating":
        low, high = int(f.min if f.min is not None else 1), int(f.max if f.max is not None else 5)
        bound["choices"] = [
            {"value": str(n), "label": str(n), "selected": str(n) in selected_text} for n in range(low, high + 1)
        ]
    return bound


def bound_fields(
    form: FormDef, data: Mapping[str, Any], errors: Mapping[str, str], prerequisites: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each declared field with its current value, its error, and (lists) its items, for the templates."""
    out = []
    for f in form.fields:
        value = data.get(f.name, empty_value(f))
        bound = _bound(f, value, errors, f.name, f.name)
        if f.type == "list":
            items = [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
            elements: list[Mapping[str, Any]] = []
            if f.for_each is not None:
                elements = for_each_elements(f, prerequisites)
                by_key = {_text(item.get(f.for_each.key)): item for item in items}
                items = [
                    {**by_key.get(_text(el.get(f.for_each.key)), {}), f.for_each.key: el.get(f.for_each.key)}
                    for el in elements
                ]
            bound["items"] = [
                {
                    "index": i,
                    "prefix": f"{f.name}-{i}-",
                    "key": _text(item.get(f.for_each.key)) if f.for_each else "",
                    "image": _text(elements[i].get(f.for_each.image)) if f.for_each and f.for_each.image else "",
                    "title": _text(elements[i].get(f.for_each.title)) if f.for_each and f.for_each.title else "",
                    "fields": [
                        _bound(
                            sub,
                            item.get(sub.name, empty_value(sub)),
                            errors,
                            f"{f.name}[{i}].{sub.name}",
                            f"{f.name}-{i}-{sub.name}",
                        )
                        for sub in f.fields
                    ],
                }
                for i, item in enumerate(items)
            ]
            bound["blank"] = [_bound(sub, empty_value(sub), {}, "", f"{f.name}-__i__-{sub.name}") for sub in f.fields]
            bound["count"] = len(items)
            bound["fixed"] = f.for_each is not None
        out.append(bound)
    return out
