"""eventyard: a self-hosted customer activity hub."""

__version__ = "0.1.0"
