from django.urls import path

from reports import combination_views, delivery_views, imaging_views, package_views, review_views, views

urlpatterns = [
    path("reports/mous/<int:pk>/", views.mous_diagnostics, name="reports-mous"),
    path("reports/eb/<int:pk>/", views.eb_overview, name="reports-eb"),
    path("reports/eb/<int:pk>/compare/", views.compare, name="reports-compare"),
    path("reports/runs/<int:pk>/<str:topic>/", views.topic_page, name="reports-topic"),
    path(
        "reports/runs/<int:pk>/<str:topic>/figures/<str:name>.json", views.figure_json, name="reports-figure"
    ),
    path(
        "reports/mous/<int:pk>/combination/", combination_views.combination_page, name="reports-combination"
    ),
    path(
        "reports/mous/<int:pk>/combination/figure.json",
        combination_views.combination_figure,
        name="reports-combination-figure",
    ),
    path(
        "reports/mous/<int:pk>/combination/status/",
        combination_views.combination_status,
        name="reports-combination-status",
    ),
    path(
        "reports/mous/<int:pk>/combination/copy/",
        combination_views.combination_copy,
        name="reports-combination-copy",
    ),
    path(
        "reports/mous/<int:pk>/combination/flux/",
        combination_views.combination_flux_edit,
        name="reports-combination-flux",
    ),
    path(
        "reports/mous/<int:pk>/combination/generate/",
        combination_views.combination_generate,
        name="reports-combination-generate",
    ),
    path(
        "reports/mous/<int:pk>/combination/run/",
        combination_views.combination_run,
        name="reports-combination-run",
    ),
    path("reports/findings/<int:pk>/apply/", views.finding_apply, name="reports-finding-apply"),
    path("reports/mous/<int:pk>/imaging/", imaging_views.imaging_page, name="reports-imaging"),
    path(
        "reports/mous/<int:pk>/imaging/status/", imaging_views.imaging_status, name="reports-imaging-status"
    ),
    path("reports/mous/<int:pk>/imaging/copy/", imaging_views.imaging_copy, name="reports-imaging-copy"),
    path(
        "reports/mous/<int:pk>/imaging/<str:which>/generate/",
        imaging_views.imaging_generate,
        name="reports-imaging-generate",
    ),
    path(
        "reports/mous/<int:pk>/imaging/<str:which>/run/",
        imaging_views.imaging_run,
        name="reports-imaging-run",
    ),
    path("reports/images/<int:pk>/", imaging_views.image_page, name="reports-image"),
    path("reports/images/<int:pk>/plane.json", imaging_views.image_plane, name="reports-image-plane"),
    path(
        "reports/images/<int:pk>/spectrum.json", imaging_views.image_spectrum, name="reports-image-spectrum"
    ),
    path("reports/mous/<int:pk>/checklist/", package_views.checklist_page, name="reports-checklist"),
    path("reports/mous/<int:pk>/readme/", package_views.readme_page, name="reports-readme"),
    path("reports/mous/<int:pk>/readme/edit/", package_views.readme_edit, name="reports-readme-edit"),
    path("reports/mous/<int:pk>/qa2/", package_views.qa2_request, name="reports-qa2-request"),
    path("reports/mous/<int:pk>/qa2/status/", package_views.qa2_status, name="reports-qa2-status"),
    path("reports/eb/<int:pk>/qa2/", package_views.qa2_page, name="reports-qa2"),
    path("reports/eb/<int:pk>/qa2/<str:name>", package_views.qa2_file, name="reports-qa2-file"),
    path("reports/mous/<int:pk>/review/", review_views.review_page, name="reports-review"),
    path("reports/mous/<int:pk>/review/start/", review_views.review_start, name="reports-review-start"),
    path("reports/mous/<int:pk>/review/decide/", review_views.review_decide, name="reports-review-decide"),
    path("reports/mous/<int:pk>/delivery/", delivery_views.delivery_page, name="reports-delivery"),
    path(
        "reports/mous/<int:pk>/delivery/start/", delivery_views.delivery_start, name="reports-delivery-start"
    ),
    path(
        "reports/mous/<int:pk>/delivery/status/",
        delivery_views.delivery_status,
        name="reports-delivery-status",
    ),
]
