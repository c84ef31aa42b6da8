from django.urls import path

from tenant_apps.members import views

app_name = "members"

urlpatterns = [
    path("", views.MembersView.as_view(), name="list"),
    path("invite/", views.InvitationSendView.as_view(), name="invite"),
    path("<int:member_id>/role/", views.MemberRoleView.as_view(), name="role"),
    path("<int:member_id>/remove/", views.MemberRemoveView.as_view(), name="remove"),
    path(
        "<int:member_id>/second-factor/reset/",
        views.MemberSecondFactorResetView.as_view(),
        name="second-factor-reset",
    ),
    path(
        "invitations/<int:invitation_id>/resend/",
        views.InvitationResendView.as_view(),
        name="invitation-resend",
    ),
    path(
        "invitations/<int:invitation_id>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="invitation-revoke",
    ),
]
