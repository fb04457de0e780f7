"""Alert rules, channels, silences, states, events and the delivery log under /api/v1/alerts/."""

from django.urls import path

from alerts.api import views

urlpatterns = [
    path("rules", views.RulesView.as_view(), name="api-alert-rules"),
    path("rules/<int:rule_id>", views.RuleView.as_view(), name="api-alert-rule"),
    path("channels", views.ChannelsView.as_view(), name="api-alert-channels"),
    path("channels/<int:channel_id>", views.ChannelView.as_view(), name="api-alert-channel"),
    path("channels/<int:channel_id>/test", views.ChannelTestView.as_view(), name="api-alert-channel-test"),
    path("silences", views.SilencesView.as_view(), name="api-alert-silences"),
    path("silences/<int:silence_id>", views.SilenceView.as_view(), name="api-alert-silence"),
    path("states", views.StatesView.as_view(), name="api-alert-states"),
    path("events", views.EventsView.as_view(), name="api-alert-events"),
    path("notifications", views.NotificationsView.as_view(), name="api-alert-notifications"),
]
