"""HTML pages of the assignments app."""

from django.urls import path

from assignments import intake_views, views

urlpatterns = [
    path("whiteboard/", views.whiteboard, name="assignments-whiteboard"),
    path("whiteboard/bulk-assign/", views.whiteboard_bulk_assign, name="assignments-bulk-assign"),
    path("my-work/", views.my_work, name="assignments-my-work"),
    path("mous/<int:pk>/", views.mous_detail, name="assignments-mous"),
    path("mous/<int:pk>/transition/", views.mous_transition, name="assignments-mous-transition"),
    path("mous/<int:pk>/assign/", views.mous_assign, name="assignments-mous-assign"),
    path("mous/<int:pk>/unassign/", views.mous_unassign, name="assignments-mous-unassign"),
    path("mous/<int:pk>/edit/", views.mous_edit, name="assignments-mous-edit"),
    # intake: register projects (PI, co-Is), MOUS and EBs (DRMs and data analysts)
    path("projects/new/", intake_views.project_new, name="intake-project-new"),
    path("projects/<int:pk>/", intake_views.project_detail, name="intake-project"),
    path("projects/<int:pk>/investigators/", intake_views.investigator_add, name="intake-investigator-add"),
    path("mous/new/", intake_views.mous_new, name="intake-mous-new"),
    path("mous/<int:pk>/ebs/new/", intake_views.eb_new, name="intake-eb-new"),
]
