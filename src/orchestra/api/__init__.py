"""The HTTP API (django-ninja): client (project) API, worker interface, project management, SDK."""
