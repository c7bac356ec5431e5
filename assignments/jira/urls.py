from django.urls import path

from assignments.jira import views

# Mounted at the site root: the hook lives under /api/, the DRM page under /jira/.
urlpatterns = [
    path("api/hooks/jira/", views.webhook, name="assignments-jira-webhook"),
    path("jira/", views.jira_page, name="assignments-jira"),
    path("jira/deliveries/<int:pk>/", views.delivery_detail, name="assignments-jira-delivery"),
    path("jira/deliveries/<int:pk>/replay/", views.delivery_replay_view, name="assignments-jira-replay"),
    path("jira/outbox/<int:pk>/send/", views.outbox_retry_view, name="assignments-jira-outbox-send"),
]
