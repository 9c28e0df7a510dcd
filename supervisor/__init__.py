"""mutagen-actors supervisor package."""
