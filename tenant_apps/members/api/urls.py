from django.urls import path

from core.api.views import operations
from tenant_apps.members.api import views

urlpatterns = [
    path(
        "members",
        operations(views.MemberListApi),
        name="api-members",
    ),
    path(
        "members/<int:member_id>",
        operations(views.MemberDetailApi, views.MemberUpdateApi, views.MemberRemoveApi),
        name="api-member",
    ),
    path(
        "invitations",
        operations(views.InvitationListApi, views.InvitationSendApi),
        name="api-invitations",
    ),
    path(
        "invitations/<int:invitation_id>",
        operations(views.InvitationDetailApi, views.InvitationRevokeApi),
        name="api-invitation",
    ),
    path(
        "invitations/<int:invitation_id>/resend",
        operations(views.InvitationResendApi),
        name="api-invitation-resend",
    ),
]
