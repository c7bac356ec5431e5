from tests.calibration.conftest import drm_person, make_eb, reducer  # noqa: F401 - shared fixtures
