from django.urls import path

from tenant_apps.members import views

app_name = "members"

urlpatterns = [
    path("", views.MembersView.as_view(), name="list"),
    path("invite/", views.InvitationSendView.as_view(), name="invite"),
    path("<int:member_id>/role/", views.MemberRoleView.as_view(), name="role"),
    path("<int:member_id>/remove/", views.MemberRemoveView.as_view(), name="remove"),
]
