"""mutagen-actors agent package."""
