"""Members of the workspace and invitations: parse, call a service, render."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from core.errors import AppError, NotFoundError
from core.forms import form_error_add
from core.ratelimit import ThrottledError, rate_limit_hit
from core.views import throttled_response
from shared_apps.accounts.models import User
from shared_apps.tenants.addresses import LinkOrigin
from tenant_apps.members import policy, selectors, services
from tenant_apps.members.errors import InvitationInvalidError
from tenant_apps.members.forms import AcceptInvitationForm, InvitationForm, RoleForm
from tenant_apps.members.models import Invitation
from tenant_apps.members.second_factor import member_second_factor_reset


class MembersBase(LoginRequiredMixin, View):
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def member(self, member_id: int) -> User:
        """The person in the URL, or the 404 page."""
        try:
            return selectors.member_get(actor=self.actor, member_id=member_id)
        except NotFoundError as error:
            raise Http404(error.detail) from None

    def invitation(self, invitation_id: int) -> Invitation:
        """The open invitation in the URL, or the 404 page."""
        try:
            return selectors.invitation_get_live(actor=self.actor, invitation_id=invitation_id)
        except NotFoundError as error:
            raise Http404(error.detail) from None


class MembersView(MembersBase):
    def get(self, request: HttpRequest, form: InvitationForm | None = None) -> HttpResponse:
        can_invite = policy.can(self.actor, "member.invite")
        context = {
            "members": selectors.member_list(actor=self.actor),
            "invitations": selectors.invitation_list_live(actor=self.actor) if can_invite else [],
            "seats": selectors.seats_overview(),
            "invite_form": form or InvitationForm(),
            "roles": policy.roles_assignable_by(self.actor),
        }
        return render(request, "members/member_list.html", context, status=400 if form else 200)


class InvitationSendView(MembersView):
    def post(self, request: HttpRequest) -> HttpResponse:
        try:  # each invitation is an e-mail sent in the workspace's name
            rate_limit_hit(request, scope="invitation", actor=str(self.actor.pk))
        except ThrottledError as error:
            return throttled_response(request, error, layout="layouts/workspace.html")
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                services.invitation_send(
                    actor=self.actor, origin=LinkOrigin.of(request), **form.cleaned_data
                )
            except AppError as error:
                form_error_add(form, error)
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("members:list")
        return self.get(request, form=form)


class MemberRoleView(MembersBase):
    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        member = self.member(member_id)
        form = RoleForm(request.POST)
        if form.is_valid():
            try:
                services.member_role_change(
                    actor=self.actor, member=member, role=form.cleaned_data["role"]
                )
            except AppError as error:
                messages.error(request, error.detail)
            else:
                messages.success(request, f"{member.email} is now {member.get_role_display()}.")
        return redirect("members:list")


class ConfirmedActionView(MembersBase):
    """A destructive action: GET asks for confirmation, POST does it."""

    title = ""
    question = ""
    button = ""

    def confirm_page(self, request: HttpRequest, subject: str) -> HttpResponse:
        context = {
            "title": self.title,
            "question": self.question.format(subject=subject),
            "button": self.button,
            "cancel_url": reverse("members:list"),
        }
        return render(request, "confirm.html", context)

    def done(self, request: HttpRequest, outcome: str) -> HttpResponse:
        messages.success(request, outcome)
        return redirect("members:list")

    def refused(self, request: HttpRequest, error: AppError) -> HttpResponse:
        messages.error(request, error.detail)
        return redirect("members:list")


class MemberRemoveView(ConfirmedActionView):
    title = "Remove from the workspace"
    question = (
        "Remove {subject} from this workspace? They can no longer sign in; their work stays. "
        "You can invite them back later."
    )
    button = "Remove"

    def get(self, request: HttpRequest, member_id: int) -> HttpResponse:
        member = self.member(member_id)
        policy.require(self.actor, "member.remove", member)
        return self.confirm_page(request, member.email)

    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        member = self.member(member_id)
        try:
            services.member_remove(actor=self.actor, member=member)
        except AppError as error:
            return self.refused(request, error)
        return self.done(request, f"{member.email} was removed from the workspace.")


class MemberSecondFactorResetView(ConfirmedActionView):
    title = "Reset two-factor sign-in"
    question = (
        "Remove the authenticator and backup codes of {subject}? They set up two-factor "
        "sign-in again at their next sign-in, and are told by e-mail."
    )
    button = "Reset two-factor sign-in"

    def get(self, request: HttpRequest, member_id: int) -> HttpResponse:
        member = self.member(member_id)
        policy.require(self.actor, "member.reset_second_factor", member)
        return self.confirm_page(request, member.email)

    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        member = self.member(member_id)
        member_second_factor_reset(actor=self.actor, member=member)
        return self.done(request, f"Two-factor sign-in of {member.email} was reset.")


class InvitationRevokeView(ConfirmedActionView):
    title = "Withdraw the invitation"
    question = "Withdraw the invitation for {subject}? The link already sent stops working."
    button = "Withdraw"

    def get(self, request: HttpRequest, invitation_id: int) -> HttpResponse:
        invitation = self.invitation(invitation_id)
        policy.require(self.actor, "invitation.revoke", invitation)
        return self.confirm_page(request, invitation.email)

    def post(self, request: HttpRequest, invitation_id: int) -> HttpResponse:
        invitation = self.invitation(invitation_id)
        try:
            services.invitation_revoke(actor=self.actor, invitation=invitation)
        except AppError as error:
            return self.refused(request, error)
        return self.done(request, f"The invitation for {invitation.email} was withdrawn.")


class InvitationResendView(MembersBase):
    def post(self, request: HttpRequest, invitation_id: int) -> HttpResponse:
        invitation = self.invitation(invitation_id)
        try:
            services.invitation_resend(
                actor=self.actor, invitation=invitation, origin=LinkOrigin.of(request)
            )
        except AppError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, f"Invitation sent again to {invitation.email}.")
        return redirect("members:list")


class InvitationAcceptView(View):
    """Anyone holding a valid link of this workspace may create their account here."""

    template_name = "members/invitation_accept.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        token = request.GET.get("token", "")
        try:
            invitation = services.invitation_load(token)
        except InvitationInvalidError as error:
            return render(request, self.template_name, {"error": error.detail}, status=400)
        context = {"invitation": invitation, "form": AcceptInvitationForm(), "token": token}
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        token = request.POST.get("token", "")
        form = AcceptInvitationForm(request.POST)
        if form.is_valid():
            try:
                user = services.invitation_accept(token=token, **form.cleaned_data)
            except InvitationInvalidError as error:
                return render(request, self.template_name, {"error": error.detail}, status=400)
            except AppError as error:
                form_error_add(form, error)
            else:
                login(request, user, backend="shared_apps.accounts.backends.EmailBackend")
                return redirect("workspace:home")
        return render(request, self.template_name, {"form": form, "token": token}, status=400)
