"""``python -m mutagen_actors.cli`` (how ``daemon start`` launches the background daemon)."""

from .main import main

main()
