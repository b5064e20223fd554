"""Modes: one file each, one small interface (see base.py)."""
