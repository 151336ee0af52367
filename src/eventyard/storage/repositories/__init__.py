"""One repository per canonical noun, each bound to one connection."""
