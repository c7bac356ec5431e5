"""Session fixtures for CASA test data: simulated ALMA EBs and NGC5921 (filled in by issue 3)."""
