"""Compiled hot paths (built from src_cy/*.pyx). Import through mmate_fast._ext, never directly."""
