"""The journalism workflow's `photo_adjustment` machine step: greyscale and shrink the photographer's photos.

Input: ``prerequisites["document_creation"]["raw_photos_folder"]``, the file store folder the photographer
filled (see ``documents.create_documents``). Every ``.png``, ``.jpg``, ``.jpeg``, ``.gif`` and ``.webp``
file in it (case-insensitive) is turned upright (EXIF orientation), flattened onto white if transparent,
converted to greyscale (Pillow mode ``"L"``), shrunk to fit ``max_size`` pixels on its long side (step
kwarg, default 1200; never enlarged) and saved as PNG to
``journalism/project-<id>/adjusted_photos/<stem>.png`` (``<stem>-<ext>.png`` when photos share a stem,
ignoring case). Other files are skipped.

Output::

    {"photos": [{"src": <absolute URL of the adjusted PNG>,
                 "name": "journalism/project-7/adjusted_photos/cat.png",   # file store name
                 "original": "journalism/project-7/raw_photos/cat.jpg"},   # file store name
                ...]}                                                       # sorted by "name"

An empty folder gives ``{"photos": []}`` rather than an error: a story may run without photos, and the
copy editor then simply sees none (the photography review is where missing photos get caught). A file
that Pillow cannot read raises ValueError naming it, so the attempt fails with a message saying which
photo to replace.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from orchestra import files

from .documents import project_folder

IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp"})
DEFAULT_MAX_SIZE = 1200


def _split(name: str) -> tuple[str, str]:
    """(stem, lower-case extension) of the last part of a file store name."""
    base = name.rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return (stem, ext.lower()) if dot and stem else (base, "")


def adjust_image(data: bytes, *, max_size: int, source: str) -> bytes:
    """Greyscale, shrink-to-fit PNG bytes of an image; ValueError naming `source` if it is unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.new("RGBA", rgba.size, "white")
            image.alpha_composite(rgba)
        image = image.convert("L")
        image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"photo_adjustment: {source} is not a readable image ({error}); replace or remove it"
        ) from error
    return out.getvalue()


def autoadjust_photos(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Adjust every photo in the project's raw photos folder; return the adjusted photos' names and URLs."""
    try:
        raw_folder = prerequisites["document_creation"]["raw_photos_folder"]
    except (KeyError, TypeError):
        raise ValueError(
            "photo_adjustment: prerequisites lack document_creation's 'raw_photos_folder'; this step"
            " needs the document_creation step to have completed"
            f" (got prerequisites of: {sorted(prerequisites or {})})"
        ) from None
    max_size = kwargs.get("max_size", DEFAULT_MAX_SIZE)
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"photo_adjustment: kwarg max_size must be a positive integer, got {max_size!r}")
    try:
        raw_names = files.list_folder(raw_folder)
    except FileNotFoundError as error:
        raise ValueError(
            f"photo_adjustment: the raw photos folder {raw_folder!r} does not exist; re-run document_creation"
        ) from error

    adjusted_folder = f"{project_folder(project_data)}/adjusted_photos"
    raw_photos = [name for name in raw_names if _split(name)[1] in IMAGE_EXTENSIONS]
    stem_counts: dict[str, int] = {}
    for raw_name in raw_photos:
        stem = _split(raw_name)[0].lower()
        stem_counts[stem] = stem_counts.get(stem, 0) + 1

    photos = []
    used: set[str] = set()
    for raw_name in raw_photos:
        stem, ext = _split(raw_name)
        base = f"{stem}-{ext}" if stem_counts[stem.lower()] > 1 else stem  # cat.jpg + cat.png: keep both
        adjusted, counter = f"{adjusted_folder}/{base}.png", 2
        while adjusted.lower() in used:
            adjusted, counter = f"{adjusted_folder}/{base}-{counter}.png", counter + 1
        used.add(adjusted.lower())
        data = adjust_image(files.read_file(raw_name), max_size=max_size, source=raw_name)
        files.save_file(adjusted, data)
        photos.append({"src": files.file_url(adjusted), "name": adjusted, "original": raw_name})
    photos.sort(key=lambda photo: photo["name"])
    return {"photos": photos}
