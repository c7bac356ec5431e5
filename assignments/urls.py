"""HTML pages of the assignments app."""

from django.urls import path

from assignments import views

urlpatterns = [
    path("whiteboard/", views.whiteboard, name="assignments-whiteboard"),
    path("whiteboard/bulk-assign/", views.whiteboard_bulk_assign, name="assignments-bulk-assign"),
    path("my-work/", views.my_work, name="assignments-my-work"),
    path("mous/<int:pk>/", views.mous_detail, name="assignments-mous"),
    path("mous/<int:pk>/transition/", views.mous_transition, name="assignments-mous-transition"),
    path("mous/<int:pk>/assign/", views.mous_assign, name="assignments-mous-assign"),
    path("mous/<int:pk>/unassign/", views.mous_unassign, name="assignments-mous-unassign"),
    path("mous/<int:pk>/edit/", views.mous_edit, name="assignments-mous-edit"),
]
