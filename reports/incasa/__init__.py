"""Diagnostics extraction: runs inside the CASA process of a run (imports casatools)."""
