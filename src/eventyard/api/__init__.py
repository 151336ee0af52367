"""eventyard's own REST API (``/api/v1``) and the operational endpoints."""
