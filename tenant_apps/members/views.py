"""Members of the workspace and invitations: parse, call a service, render."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from core.errors import AppError
from core.forms import form_error_add
from shared_apps.accounts.models import User
from shared_apps.tenants.addresses import LinkOrigin
from tenant_apps.members import policy, services
from tenant_apps.members.errors import InvitationInvalidError
from tenant_apps.members.forms import AcceptInvitationForm, InvitationForm, RoleForm


class MembersView(LoginRequiredMixin, View):
    @property
    def actor(self) -> User:
        return cast(User, self.request.user)

    def member(self, member_id: int) -> User:
        member = User.objects.filter(pk=member_id, is_active=True).first()
        if member is None:
            raise Http404("There is no such member in this workspace.")
        return member

    def get(self, request: HttpRequest, form: InvitationForm | None = None) -> HttpResponse:
        policy.require(self.actor, "member.view")
        context = {
            "members": User.objects.filter(is_active=True).order_by("email"),
            "invite_form": form or InvitationForm(),
            "can_invite": policy.can(self.actor, "member.invite"),
            "can_manage": policy.can(self.actor, "member.change_role"),
            "roles": policy.roles_assignable_by(self.actor),
        }
        return render(request, "members/member_list.html", context, status=400 if form else 200)


class InvitationSendView(MembersView):
    def post(self, request: HttpRequest) -> HttpResponse:
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


class MemberRoleView(MembersView):
    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        form = RoleForm(request.POST)
        if form.is_valid():
            try:
                services.member_role_change(
                    actor=self.actor, member=self.member(member_id), role=form.cleaned_data["role"]
                )
            except AppError as error:
                messages.error(request, error.detail)
        return redirect("members:list")


class MemberRemoveView(MembersView):
    def post(self, request: HttpRequest, member_id: int) -> HttpResponse:
        try:
            services.member_remove(actor=self.actor, member=self.member(member_id))
        except AppError as error:
            messages.error(request, error.detail)
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
