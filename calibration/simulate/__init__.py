"""Simulated ALMA execution blocks (and the NGC5921 real-data EB) for the demo and the tests.

Web/worker side (no CASA imports): `spec` (typed spec + validation), `presets`, `build`
(`build_eb`, `import_ngc5921`, which start CASA through calibration.casa). CASA side (imported
only inside the CASA subprocess): `builder`, `atmosphere`, `visibilities`, `subtables`,
`faults`, `asdm`, `ngc5921`. Whether real CASA recovers the injected truth is checked by the
tests (tests/calibration/simulate/verify.py, started by casa_checks.py there).
"""
