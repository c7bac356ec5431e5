"""Code that only ever runs inside the CASA subprocess started by calibration.casa.

Nothing here is imported by the web process or the Celery process: these modules import
casatools/casatasks at module level. This is also the one place that opens CASA tables.
"""
