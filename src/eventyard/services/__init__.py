"""Use cases. Services never commit: the unit of work passed in does, once."""
