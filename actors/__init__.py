"""mutagen-actors actors package."""
