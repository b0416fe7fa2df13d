"""The journalism workflow's `document_creation` machine step: the project's article draft and photo folder.

B12 created a Google Doc and a Google Drive folder; we create them in Orchestra's file store
(``orchestra.files``), so the workflow runs offline. For project 7 the step creates:

- ``journalism/project-7/article.md``: a Markdown template for the reporter, titled with
  ``project_data["article_title"]``, else the project's description, else "Untitled article";
- ``journalism/project-7/raw_photos``: the (empty) folder the photographer fills.

Output::

    {
        "articleURL": "<ORCHESTRA_URL>/orchestra/files/journalism/project-7/article.md",
        "article_document": "journalism/project-7/article.md",       # file store name of the draft
        "raw_photos_folder": "journalism/project-7/raw_photos",      # file store folder of the photos
        "photos_folder_url": "<ORCHESTRA_URL>/orchestra/files/journalism/project-7/raw_photos",
    }

``photos_folder_url`` is the URL prefix under which the folder's files are served (append
``/<file name>``); the file store has no folder listing page.

Running the step again (a retry, or a project reverted to before it) keeps an existing article, so a
reporter's draft is never overwritten by the template.
"""

from __future__ import annotations

from typing import Any

from orchestra import files

ARTICLE_TEMPLATE = """\
# {title}

*Draft article for journalism project {project_id}. Replace the guidance in italics with your text.*

## Headline

*The copy editor writes the final headline; suggest one here.*

## Lede

*One or two sentences: who, what, when, where and why.*

## Story

*The body of the article.*

## Quotes and sources

*Who you spoke to and where each fact comes from.*
"""


def project_folder(project_data: dict[str, Any]) -> str:
    """``journalism/project-<id>``: where every file of the project lives."""
    project_id = project_data.get("project_id")
    if project_id is None:
        raise ValueError(
            "journalism: project_data has no 'project_id'; run this step through Orchestra, which adds it,"
            " or pass project_data={'project_id': <int>, ...} when calling it directly"
        )
    return f"journalism/project-{int(project_id)}"


def _project_description(project_id: int) -> str:
    from orchestra.models import Project

    description = Project.objects.filter(pk=project_id).values_list("short_description", flat=True).first()
    return (description or "").strip()


def create_documents(project_data: dict[str, Any], prerequisites: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Create the article draft and the raw photos folder; return their names and URLs."""
    folder = project_folder(project_data)
    title = (
        str(project_data.get("article_title") or "").strip()
        or _project_description(int(project_data["project_id"]))
        or "Untitled article"
    )
    article = f"{folder}/article.md"
    if not files.file_exists(article):
        files.save_file(article, ARTICLE_TEMPLATE.format(title=title, project_id=project_data["project_id"]).encode())
    raw_photos = files.make_folder(f"{folder}/raw_photos")
    return {
        "articleURL": files.file_url(article),
        "article_document": article,
        "raw_photos_folder": raw_photos,
        "photos_folder_url": files.file_url(raw_photos),
    }
