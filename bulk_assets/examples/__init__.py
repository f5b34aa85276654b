"""The bundled datasets, declared through the public Python route (``@dataset``); the fetched
one is declared in YAML beside them (``cities.yaml``)."""

from .events import events as events
from .user_email_updates import user_email_updates as user_email_updates
from .users import users as users
