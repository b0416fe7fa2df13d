"""Orchestra: orchestrate teams of human experts and machines through declarative, versioned workflows.

The engine (`orchestra.engine`) is pure Python and never imports Django. Everything else is a Django app:
add ``"orchestra"`` to ``INSTALLED_APPS`` and ``path("orchestra/", include("orchestra.urls"))`` to your URLs,
or run it standalone with the ``orchestra`` command (settings in ``orchestra.settings``).
"""

__version__ = "0.1.0"
