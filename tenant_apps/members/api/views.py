"""People and invitations of a workspace's API.

Each class is one operation: it parses, calls a selector or service, renders. Who may do
what is the services' and selectors' business (tenant_apps.members.policy), as on the
members page. Changing people is administration: an API key needs the `admin` scope.
"""

from __future__ import annotations

from typing import cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.inputs import StrictInput, parse_body, parse_query
from core.api.pagination import CursorPage, paginated
from core.api.views import TenantApi
from core.ratelimit import rate_limit_hit
from shared_apps.accounts.models import User
from shared_apps.tenants.addresses import LinkOrigin
from tenant_apps.members.api.serializers import InvitationSummary, MemberSummary
from tenant_apps.members.policy import ApiKeyScope
from tenant_apps.members.selectors import (
    invitation_get_live,
    invitation_list_live,
    member_get,
    member_list,
)
from tenant_apps.members.services import (
    invitation_resend,
    invitation_revoke,
    invitation_send,
    member_remove,
    member_role_change,
)


def _actor(request: Request) -> User:
    # TenantApi lets only signed-in people through.
    return cast(User, request.user)


def _mail_rate_limit(request: Request, actor: User) -> None:
    # Each invitation is an e-mail sent in the workspace's name: the page's limit, per person.
    rate_limit_hit(request, scope="invitation", actor=str(actor.pk))


# MEMBERS --------------------------------------------------------------------------------


class MemberListApi(TenantApi):
    class Filters(serializers.Serializer):
        role = serializers.ChoiceField(choices=User.Role.choices, required=False)

    Output = MemberSummary
    pagination_class = CursorPage

    def get(self, request: Request) -> Response:
        members = member_list(actor=_actor(request), **parse_query(self.Filters, request))
        return paginated(self, request, members, self.Output)


class MemberDetailApi(TenantApi):
    Output = MemberSummary

    def get(self, request: Request, member_id: int) -> Response:
        member = member_get(actor=_actor(request), member_id=member_id)
        return Response(self.Output(member).data)


class MemberUpdateApi(TenantApi):
    api_key_scope = ApiKeyScope.ADMIN  # people, not work

    class Input(StrictInput):
        role = serializers.ChoiceField(choices=User.Role.choices, required=False)

    Output = MemberSummary

    def patch(self, request: Request, member_id: int) -> Response:
        actor = _actor(request)
        member = member_get(actor=actor, member_id=member_id)
        # A PATCH names what changes; the service takes the whole editable state.
        changes = {"role": member.role}
        changes.update(parse_body(self.Input, request))
        member = member_role_change(actor=actor, member=member, **changes)
        return Response(self.Output(member).data)


class MemberRemoveApi(TenantApi):
    api_key_scope = ApiKeyScope.ADMIN  # people, not work
    Output = None
    response_status = 204

    def delete(self, request: Request, member_id: int) -> Response:
        actor = _actor(request)
        member_remove(actor=actor, member=member_get(actor=actor, member_id=member_id))
        return Response(status=self.response_status)


# INVITATIONS ----------------------------------------------------------------------------


class InvitationListApi(TenantApi):
    Output = InvitationSummary
    pagination_class = CursorPage

    def get(self, request: Request) -> Response:
        invitations = invitation_list_live(actor=_actor(request))
        return paginated(self, request, invitations, self.Output)


class InvitationSendApi(TenantApi):
    api_key_scope = ApiKeyScope.ADMIN  # people, not work

    class Input(StrictInput):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=User.Role.choices, default=User.Role.MEMBER)

    Output = InvitationSummary

    def post(self, request: Request) -> Response:
        actor = _actor(request)
        given = parse_body(self.Input, request)
        _mail_rate_limit(request, actor)
        invitation = invitation_send(actor=actor, origin=LinkOrigin.of(request), **given)
        return Response(self.Output(invitation).data, status=201)


class InvitationDetailApi(TenantApi):
    Output = InvitationSummary

    def get(self, request: Request, invitation_id: int) -> Response:
        invitation = invitation_get_live(actor=_actor(request), invitation_id=invitation_id)
        return Response(self.Output(invitation).data)


class InvitationRevokeApi(TenantApi):
    api_key_scope = ApiKeyScope.ADMIN  # people, not work
    Output = None
    response_status = 204

    def delete(self, request: Request, invitation_id: int) -> Response:
        actor = _actor(request)
        invitation = invitation_get_live(actor=actor, invitation_id=invitation_id)
        invitation_revoke(actor=actor, invitation=invitation)
        return Response(status=self.response_status)


class InvitationResendApi(TenantApi):
    api_key_scope = ApiKeyScope.ADMIN  # people, not work
    response_status = 200  # the same invitation, sent again: nothing is created

    class Input(StrictInput):
        """Nothing to choose: the body is empty or `{}`."""

    Output = InvitationSummary

    def post(self, request: Request, invitation_id: int) -> Response:
        actor = _actor(request)
        invitation = invitation_get_live(actor=actor, invitation_id=invitation_id)
        parse_body(self.Input, request)
        _mail_rate_limit(request, actor)
        invitation = invitation_resend(
            actor=actor, invitation=invitation, origin=LinkOrigin.of(request)
        )
        return Response(self.Output(invitation).data, status=self.response_status)
