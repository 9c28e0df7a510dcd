"""mutagen-actors wire package."""
