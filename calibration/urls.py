from django.urls import path

from calibration import catalogue_views, ingest_views, views

urlpatterns = [
    path("calibration/eb/<int:pk>/", views.eb_page, name="calibration-eb"),
    path("calibration/eb/<int:pk>/generate/", views.eb_generate, name="calibration-eb-generate"),
    path("calibration/eb/<int:pk>/upload/", views.eb_upload, name="calibration-eb-upload"),
    path("calibration/eb/<int:pk>/run/", views.eb_run, name="calibration-eb-run"),
    path(
        "calibration/eb/<int:pk>/flags/restore/", views.eb_restore_flags, name="calibration-eb-restore-flags"
    ),
    path("calibration/eb/<int:pk>/products/", views.eb_products, name="calibration-eb-products"),
    path("calibration/eb/<int:pk>/files/<path:relpath>", views.eb_file, name="calibration-eb-file"),
    path("calibration/mous/<int:pk>/", views.mous_scripts, name="calibration-mous"),
    path(
        "calibration/mous/<int:pk>/calibrate-all/",
        views.mous_calibrate_all,
        name="calibration-mous-calibrate-all",
    ),
    path("calibration/generations/<int:pk>/", views.generation_status, name="calibration-generation"),
    path("calibration/versions/<int:pk>/", views.version_page, name="calibration-version"),
    path(
        "calibration/versions/<int:pk>/download/", views.version_download, name="calibration-version-download"
    ),
    path("calibration/versions/<int:pk>/convert/", views.version_convert, name="calibration-version-convert"),
    path("calibration/versions/<int:pk>/confirm/", views.version_confirm, name="calibration-version-confirm"),
    path("calibration/versions/<int:pk>/diff/", views.version_diff, name="calibration-version-diff"),
    path("calibration/runs/<int:pk>/", views.run_page, name="calibration-run"),
    path("calibration/runs/<int:pk>/status/", views.run_status, name="calibration-run-status"),
    path("calibration/runs/<int:pk>/cancel/", views.run_cancel, name="calibration-run-cancel"),
    path("calibration/runs/<int:pk>/rerun/", views.run_rerun, name="calibration-run-rerun"),
    path("calibration/runs/<int:pk>/log/<str:which>/", views.run_log, name="calibration-run-log"),
    path("calibration/products/<int:pk>/file/", views.product_file, name="calibration-product-file"),
    # The calibrator flux catalogue (DRMs)
    path("calibration/catalogue/", catalogue_views.catalogue_page, name="calibration-catalogue"),
    path(
        "calibration/catalogue/<int:pk>/", catalogue_views.catalogue_page, name="calibration-catalogue-edit"
    ),
    # Bringing an EB's raw data in (calibration/ingest.py)
    path("calibration/eb/<int:pk>/ingest/", ingest_views.eb_ingest, name="calibration-eb-ingest"),
    path(
        "calibration/eb/<int:pk>/ingest/path/", ingest_views.eb_ingest_path, name="calibration-eb-ingest-path"
    ),
    path(
        "calibration/eb/<int:pk>/ingest/upload/",
        ingest_views.eb_ingest_upload,
        name="calibration-eb-ingest-upload",
    ),
    path("calibration/ingests/<int:pk>/", ingest_views.ingest_page, name="calibration-ingest"),
    path(
        "calibration/ingests/<int:pk>/cancel/", ingest_views.ingest_cancel, name="calibration-ingest-cancel"
    ),
    path(
        "calibration/ingests/<int:pk>/status/", ingest_views.ingest_status, name="calibration-ingest-status"
    ),
]
