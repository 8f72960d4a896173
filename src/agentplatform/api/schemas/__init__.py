"""Pydantic models for the wire: ``Create``/``Update`` come in, ``Public`` goes out."""
