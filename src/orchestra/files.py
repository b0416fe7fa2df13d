"""Orchestra's small file store: where the example workflows keep documents and photos.

B12's examples kept articles and photos in Google Drive; ours keep them here, so the demo runs offline.
Files live in Django's ``default_storage`` (``MEDIA_ROOT`` by default) under a ``files/`` prefix and are
served by the ``orchestra:stored_file`` view at ``<ORCHESTRA_URL>/orchestra/files/<name>`` to signed-in
people: a file saved for a project's work (an upload, or a file its machine step saved) only to the project's
workers (anyone holding a seat on one of its tasks) and project admins.

Names are relative, ``/``-separated paths such as ``journalism/project-7/raw_photos/cat.jpg``. Absolute
paths, ``..`` and ``.`` parts, empty parts, backslashes and control characters are refused with a
``ValueError`` that names the problem. A *folder* is just a name prefix; ``make_folder`` writes a hidden
``.keep`` marker so that an empty folder exists (``list_folder`` returns ``[]`` for it rather than
raising ``FileNotFoundError``) and the marker itself is never listed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.templatetags.static import static
from django.urls import reverse

from orchestra import conf

__all__ = [
    "delete_file",
    "demo_gallery_images",
    "file_exists",
    "file_url",
    "list_folder",
    "make_folder",
    "open_file",
    "owner_of",
    "read_file",
    "save_file",
    "working_on",
]

_PREFIX = "files/"
_KEEP = ".keep"
_MAX_NAME = 1000  # StoredFile.name
# The project whose work is running in this thread (a machine step): what the files it saves belong to.
_working_on: ContextVar[int | None] = ContextVar("orchestra_files_project", default=None)
_DEMO_DIR = Path(__file__).parent / "static" / "orchestra" / "demo"


def _clean(name: str, *, what: str = "file name") -> str:
    """Return `name` if it is a safe relative path inside the store, else raise ValueError saying why."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[0].isalpha() and name[1] == ":"):
        raise ValueError(f"{what} {name!r} is absolute; use a relative name such as 'folder/file.txt'")
    if "\\" in name:
        raise ValueError(f"{what} {name!r} contains a backslash; separate folders with '/'")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ValueError(f"{what} {name!r} contains a control character")
    if len(name) > _MAX_NAME:
        raise ValueError(f"{what} is {len(name)} characters long; at most {_MAX_NAME} are allowed")
    parts = name.split("/")
    if ".." in parts:
        raise ValueError(f"{what} {name!r} contains '..'; names may not leave the file store")
    if "." in parts or "" in parts:
        raise ValueError(f"{what} {name!r} has an empty or '.' part; write it without '//', './' or a trailing '/'")
    return name


def _clean_folder(folder: str) -> str:
    return _clean(folder.rstrip("/") if isinstance(folder, str) else folder, what="folder name")


def _path(name: str) -> str:
    return _PREFIX + _clean(name)


def _is_folder(path: str) -> bool:
    try:
        default_storage.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


@contextlib.contextmanager
def working_on(project_id: int | None) -> Iterator[None]:
    """Files saved inside belong to `project_id` (the executors wrap each machine step in this)."""
    token = _working_on.set(project_id)
    try:
        yield
    finally:
        _working_on.reset(token)


def owner_of(name: str) -> int | None:
    """The project a stored file belongs to, or None if it was saved outside any project's work."""
    from orchestra.models import StoredFile

    return StoredFile.objects.filter(name=_clean(name)).values_list("project_id", flat=True).first()


def _record_owner(name: str, project_id: int | None) -> None:
    from orchestra.models import StoredFile

    if project_id is not None:
        StoredFile.objects.update_or_create(name=name, defaults={"project_id": project_id})


def save_file(name: str, content: bytes, *, project_id: int | None = None) -> str:
    """Store `content` under `name`, replacing any file of that name; return the name.

    The file belongs to `project_id`, by default the project whose machine step is running (`working_on`),
    and is then served only to the people working on that project (see the `stored_file` view)."""
    path = _path(name)
    if name.rsplit("/", 1)[-1] == _KEEP:
        raise ValueError(f"file name {name!r} is reserved for folder markers; choose another name")
    if default_storage.exists(path):
        if _is_folder(path):
            raise ValueError(f"{name!r} is a folder in the file store; a file cannot have its name")
        default_storage.delete(path)
    saved = default_storage.save(path, ContentFile(bytes(content)))
    if saved != path:  # another writer created the same name between our delete and save
        default_storage.delete(saved)
        raise FileExistsError(f"file {name!r} was written concurrently by someone else; save it again")
    _record_owner(name, project_id if project_id is not None else _working_on.get())
    return name


def open_file(name: str) -> IO[bytes]:
    """Open a stored file for binary reading; the caller closes it. FileNotFoundError if there is none."""
    path = _path(name)
    if name.rsplit("/", 1)[-1] == _KEEP or not default_storage.exists(path):
        raise FileNotFoundError(f"no stored file {name!r}")
    try:
        return default_storage.open(path, "rb")
    except IsADirectoryError:
        raise FileNotFoundError(f"no stored file {name!r} ({name!r} is a folder)") from None


def file_exists(name: str) -> bool:
    """Whether a file called `name` is stored (folders are not files)."""
    try:
        open_file(name).close()
    except FileNotFoundError:
        return False
    return True


def read_file(name: str) -> bytes:
    """The content of a stored file. FileNotFoundError if there is none."""
    with open_file(name) as handle:
        return handle.read()


def delete_file(name: str) -> bool:
    """Delete a stored file; False if there was none."""
    path = _path(name)
    if name.rsplit("/", 1)[-1] == _KEEP or not default_storage.exists(path) or _is_folder(path):
        return False
    default_storage.delete(path)
    from orchestra.models import StoredFile

    StoredFile.objects.filter(name=name).delete()
    return True


def make_folder(folder: str) -> str:
    """Create `folder` (and its parents implicitly) if needed; return its name. Idempotent."""
    folder = _clean_folder(folder)
    marker = f"{_PREFIX}{folder}/{_KEEP}"
    if not default_storage.exists(marker):
        default_storage.save(marker, ContentFile(b""))
    return folder


def list_folder(folder: str) -> list[str]:
    """Sorted full names (``folder/file``) of the files directly in `folder`; subfolders are not listed.

    An empty folder made with ``make_folder`` gives ``[]``; a folder that holds nothing at all and was
    never made raises FileNotFoundError. ``""`` lists the top of the store.
    """
    folder = "" if folder in ("", "/") else _clean_folder(folder)
    directory = f"{_PREFIX}{folder}" if folder else _PREFIX.rstrip("/")
    try:
        subfolders, names = default_storage.listdir(directory)
    except FileNotFoundError:
        subfolders, names = [], []
    if not subfolders and not names and folder:
        raise FileNotFoundError(f"no folder {folder!r} in the file store; create it with make_folder()")
    base = f"{folder}/" if folder else ""
    return sorted(base + name for name in names if name != _KEEP)


def file_url(name: str) -> str:
    """Absolute URL at which the ``orchestra:stored_file`` view serves `name`."""
    return _absolute(reverse("orchestra:stored_file", kwargs={"name": _clean(name)}))


def demo_gallery_images() -> list[str]:
    """Absolute URLs of the demo gallery's images (the SVGs shipped in ``static/orchestra/demo/``)."""
    return [_absolute(static(f"orchestra/demo/{path.name}")) for path in sorted(_DEMO_DIR.glob("*.svg"))]


def _absolute(url: str) -> str:
    if url.startswith(("http://", "https://")):
        return url
    return str(conf.get("ORCHESTRA_URL")).rstrip("/") + url
