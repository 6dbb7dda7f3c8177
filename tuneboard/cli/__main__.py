"""``python -m tuneboard.cli``: the same as the ``tuneboard`` command."""

from tuneboard.cli import app

app()
