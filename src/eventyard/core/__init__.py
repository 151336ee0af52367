"""The canonical model and its rules. Pure: no I/O, no vendor names."""
