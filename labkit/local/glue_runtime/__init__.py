"""Runtime files put on PYTHONPATH for local Glue Python shell jobs (not an engine)."""
