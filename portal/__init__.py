# Loaded with Django, so tasks published from the web process use this app and its settings.
from portal.celery import app as celery_app

__all__ = ["celery_app"]
