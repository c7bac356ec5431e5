from django.urls import path

from reports import views

urlpatterns = [
    path("reports/mous/<int:pk>/", views.mous_diagnostics, name="reports-mous"),
    path("reports/eb/<int:pk>/", views.eb_overview, name="reports-eb"),
    path("reports/eb/<int:pk>/compare/", views.compare, name="reports-compare"),
    path("reports/runs/<int:pk>/<str:topic>/", views.topic_page, name="reports-topic"),
    path(
        "reports/runs/<int:pk>/<str:topic>/figures/<str:name>.json", views.figure_json, name="reports-figure"
    ),
    path("reports/findings/<int:pk>/apply/", views.finding_apply, name="reports-finding-apply"),
]
