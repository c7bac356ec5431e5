import numpy as np
import plotly

from reports.figures import decimate_minmax, tsys_spectra


def test_minmax_decimation_keeps_every_bucket_extreme():
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 300.0)
    y[50_000] = 9.0  # a spike must survive
    y[10:500] = np.nan

    xs, ys = decimate_minmax(x, y, buckets=1000)

    assert len(xs) <= 2000
    assert ys.max() == 9.0 and xs[np.argmax(ys)] == 50_000
    assert ys.min() == np.nanmin(y)
    assert np.all(np.diff(xs) > 0)


def test_short_series_are_sent_as_they_are():
    x, y = np.arange(10.0), np.arange(10.0)
    assert decimate_minmax(x, y)[0] is x


def test_spectra_use_webgl_and_skip_fully_flagged_antennas():
    spectra = np.array([[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]])

    fig = tsys_spectra(np.array([230.0, 231.0, 232.0]), spectra, ["DA41", "DA42"], spw=1, highlight="DA41")

    assert [t.name for t in fig.data] == ["DA41"]
    assert fig.data[0].type == "scattergl"


def test_plotlyjs_is_served_from_the_installed_plotly(client, settings):
    from django.contrib.staticfiles import finders

    path = finders.find("vendor/plotly/plotly.min.js")
    assert path
    with open(path) as handle:
        assert plotly.offline.get_plotlyjs_version() in handle.read(500)
