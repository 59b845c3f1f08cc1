import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

# Before the handler loads the middleware: Django's instrumentation adds its own to the chain.
from portal.tracing import tracing_setup  # noqa: E402 - needs the settings django.setup() read

tracing_setup("portal-web")
application = WSGIHandler()
