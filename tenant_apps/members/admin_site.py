"""The workspace admin (`<subdomain>.<ROOT_DOMAIN>/admin/`): only that workspace's rows,
because every query runs in its schema, and only for its owners and admins.

It is a window, not a second door: every page is read-only, and every change it offers is
an action that calls the same service the pages call, so the policy and the plan's limits
hold here too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse

from core.admin_sites import SecondFactorAdminSite
from core.errors import AppError
from shared_apps.accounts.models import User
from tenant_apps.members import policy

ModelT = TypeVar("ModelT", bound=Model)
ParentT = TypeVar("ParentT", bound=Model)
ViewT = TypeVar("ViewT", bound=Callable[..., HttpResponseBase])


class TenantAdminSite(SecondFactorAdminSite):
    site_header = "Workspace administration"
    site_title = "Workspace admin"
    index_title = "This workspace's data"

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_permission(request)) and policy.can(request.user, "admin.access")  # type: ignore[arg-type]

    def admin_view(self, view: ViewT, cacheable: bool = False) -> ViewT:
        checked = super().admin_view(view, cacheable)

        @wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if _signed_in_without_role(request):
                return _role_required(request)
            return checked(request, *args, **kwargs)

        return cast(ViewT, inner)

    def login(
        self, request: HttpRequest, extra_context: dict[str, object] | None = None
    ) -> HttpResponse:
        if _signed_in_without_role(request):
            return _role_required(request)
        return super().login(request, extra_context)


def _signed_in_without_role(request: HttpRequest) -> bool:
    return request.user.is_authenticated and not policy.can(request.user, "admin.access")


def _role_required(request: HttpRequest) -> HttpResponse:
    """Say that the admin needs an owner or admin role, in the workspace's layout.

    Sending a signed-in member to sign in again would bounce straight back (the sign-in
    page redirects people already signed in): an endless loop instead of an answer.
    """
    return TemplateResponse(request, "admin/workspace_role_required.html", status=403)


def _allowed(request: HttpRequest) -> bool:
    return policy.can(request.user, "admin.access")  # type: ignore[arg-type]


class PolicyModelAdmin(admin.ModelAdmin[ModelT]):
    """Workspace admin pages: owners and admins may look; nobody adds, edits or deletes here.

    Changes are admin actions that call a service (`run_service`); the service asks the
    policy, and its refusal becomes an error message on the list.
    """

    confirmation_template = "admin/action_confirmation.html"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return _allowed(request)

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return False  # people come through invitations, projects through the projects page

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @staticmethod
    def actor(request: HttpRequest) -> User:
        return cast(User, request.user)

    def run_service(
        self,
        request: HttpRequest,
        queryset: QuerySet[ModelT],
        call: Callable[[ModelT], object],
        *,
        done: str,
    ) -> None:
        """Call the service once per selected row; each refusal is reported, not raised.

        `done` is the message for a row that changed, with `{obj}` for the row.
        """
        for obj in queryset:
            try:
                call(obj)
            except AppError as error:
                self.message_user(request, f"{obj}: {error.detail}", messages.ERROR)
            except PermissionDenied:
                self.message_user(request, f"{obj}: your role does not allow this.", messages.ERROR)
            else:
                self.message_user(request, done.format(obj=obj), messages.SUCCESS)

    def confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet[ModelT],
        *,
        action: str,
        question: str,
        button: str,
    ) -> TemplateResponse | None:
        """The page that asks before a destructive action; None once it was answered yes."""
        if request.POST.get("post") == "yes":
            return None
        request.current_app = self.admin_site.name
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "question": question,
            "button": button,
            "action": action,
            "queryset": queryset,
            "opts": self.opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, self.confirmation_template, context)

    def confirmed_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[ModelT],
        call: Callable[[HttpRequest, ModelT], object],
        *,
        action: str,
        question: str,
        button: str,
        done: str,
    ) -> HttpResponse | None:
        """A destructive action: ask first, then call the service once per selected row."""
        asked = self.confirmation(
            request, queryset, action=action, question=question, button=button
        )
        if asked is not None:
            return asked
        self.run_service(request, queryset, lambda obj: call(request, obj), done=done)
        return None


class PolicyTabularInline(admin.TabularInline[ModelT, ParentT]):
    """Rows shown inside a workspace admin page, read-only like the page."""

    extra = 0

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return _allowed(request)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


tenant_admin_site = TenantAdminSite(name="tenant_admin")
