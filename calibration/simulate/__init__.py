"""Simulated ALMA execution blocks (and the NGC5921 real-data EB) for the demo and the tests.

Web/worker side (no CASA imports): `spec` (typed spec + validation), `presets`, `build`
(`build_eb`, `import_ngc5921`, which start CASA through calibration.casa). CASA side (imported
only inside the CASA subprocess): `builder`, `atmosphere`, `visibilities`, `subtables`,
`faults`, `verify`, `asdm`, `ngc5921`.
"""
