"""mutagen-actors cli package."""
