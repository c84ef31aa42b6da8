"""One factory per model: a minimal valid row; unique values by sequence.

Call `.create()`, `.build()` or `.create_batch()`: mypy reads their return type from the
generic (`ProjectFactory.create()` is a `Project`), but not that of a bare `ProjectFactory()`.
Tenant rows are created in whichever schema is active, like the model's own manager.
Nullable people (`created_by`, `assignee`, `invited_by`, ...) stay empty unless a test passes
one: an extra user per row would change every member list and seat count.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from shared_apps.accounts.models import User
from shared_apps.accounts.rules import email_normalize
from shared_apps.billing.models import BillingAccount, Plan, StripeEvent
from shared_apps.tenants.models import Domain, Tenant
from tenancy.schemas import schema_name_for
from tenant_apps.members.models import Invitation
from tenant_apps.members.services import INVITATION_DAYS
from tenant_apps.projects.models import Attachment, Export, Project, Task
from tenant_apps.webhooks.models import Delivery, Endpoint
from tenant_apps.webhooks.signing import secret_generate
from tenant_apps.workspace.models import WorkspaceSettings

TEST_PASSWORD = "correct-horse-battery-staple"

STAFF_ROLES = (User.Role.OWNER, User.Role.ADMIN)


# PEOPLE ---------------------------------------------------------------------------------


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A person of the active schema; owners and admins are staff, as the services make them."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.django.Password(TEST_PASSWORD)
    role = User.Role.MEMBER
    is_staff = factory.LazyAttribute(lambda user: user.role in STAFF_ROLES)

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        # Stored as every door stores it (UserManager.create_user): trimmed and lower-case.
        kwargs["email"] = email_normalize(kwargs["email"])
        return kwargs


class InvitationFactory(factory.django.DjangoModelFactory[Invitation]):
    """An open invitation to join the active workspace as a member."""

    class Meta:
        model = Invitation

    email = factory.Sequence(lambda n: f"invitee{n}@example.test")
    role = User.Role.MEMBER
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=INVITATION_DAYS))


# PROJECTS -------------------------------------------------------------------------------


class ProjectFactory(factory.django.DjangoModelFactory[Project]):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    status = Project.Status.ACTIVE


class TaskFactory(factory.django.DjangoModelFactory[Task]):
    class Meta:
        model = Task

    project = factory.SubFactory(ProjectFactory)
    title = factory.Sequence(lambda n: f"Task {n}")
    status = Task.Status.TODO


class AttachmentFactory(factory.django.DjangoModelFactory[Attachment]):
    """An attachment naming a stored file without writing it (upload through the page for bytes)."""

    class Meta:
        model = Attachment

    project = factory.SubFactory(ProjectFactory)
    original_name = factory.Sequence(lambda n: f"file{n}.txt")
    file = factory.LazyAttribute(
        lambda row: f"attachments/{row.project.pk}/{uuid.uuid4().hex}/{row.original_name}"
    )
    size = 1024
    content_type = "text/plain"


class ExportFactory(factory.django.DjangoModelFactory[Export]):
    """A queued export; pass `status=Export.Status.DONE` and a `file` for a ready one."""

    class Meta:
        model = Export

    project = factory.SubFactory(ProjectFactory)
    status = Export.Status.PENDING


class WorkspaceSettingsFactory(factory.django.DjangoModelFactory[WorkspaceSettings]):
    """The active workspace's one settings row (a second one breaks its unique constraint)."""

    class Meta:
        model = WorkspaceSettings

    singleton = True
    timezone = "UTC"


class EndpointFactory(factory.django.DjangoModelFactory[Endpoint]):
    """An enabled endpoint for project events; pass `url` of a test receiver to send to it."""

    class Meta:
        model = Endpoint

    url = factory.Sequence(lambda n: f"https://hooks{n}.example.com/in")
    events = factory.LazyFunction(lambda: ["project.created", "project.updated"])
    secret = factory.LazyFunction(secret_generate)


class DeliveryFactory(factory.django.DjangoModelFactory[Delivery]):
    """A pending delivery of a `project.created` event, due now."""

    class Meta:
        model = Delivery

    endpoint = factory.SubFactory(EndpointFactory)
    event_id = factory.LazyFunction(uuid.uuid4)
    event_type = "project.created"
    body = factory.LazyAttribute(
        lambda d: f'{{"id":"msg_{d.event_id.hex}","type":"project.created","data":{{}}}}'
    )
    next_attempt_at = factory.LazyFunction(timezone.now)


# PUBLIC SCHEMA --------------------------------------------------------------------------


class TenantFactory(factory.django.DjangoModelFactory[Tenant]):
    """A tenants row only: its schema is not created (tenant_create makes a working workspace)."""

    class Meta:
        model = Tenant

    id = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"Workspace {n}")
    subdomain = factory.Sequence(lambda n: f"workspace{n}")
    schema_name = factory.LazyAttribute(lambda tenant: schema_name_for(tenant.id))
    status = Tenant.Status.PROVISIONING


class DomainFactory(factory.django.DjangoModelFactory[Domain]):
    class Meta:
        model = Domain

    tenant = factory.SubFactory(TenantFactory)
    domain = factory.LazyAttribute(lambda row: f"{row.tenant.subdomain}.localhost")
    is_primary = True


class PlanFactory(factory.django.DjangoModelFactory[Plan]):
    """A free plan that is not the default; give it a `stripe_price_id` and price for a paid one."""

    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.Sequence(lambda n: f"Plan {n}")


class BillingAccountFactory(factory.django.DjangoModelFactory[BillingAccount]):
    class Meta:
        model = BillingAccount

    tenant = factory.SubFactory(TenantFactory)
    plan = factory.SubFactory(PlanFactory)
    subscription_status = BillingAccount.Status.NONE


class StripeEventFactory(factory.django.DjangoModelFactory[StripeEvent]):
    """A received, unprocessed Stripe event; pass the `payload` a test delivers for a real one."""

    class Meta:
        model = StripeEvent

    event_id = factory.Sequence(lambda n: f"evt_test_{n}")
    type = "customer.created"
    payload = factory.LazyAttribute(
        lambda row: {
            "id": row.event_id,
            "object": "event",
            "type": row.type,
            "data": {"object": {}},
        }
    )


# SECOND FACTOR --------------------------------------------------------------------------


def totp_device_for(user: User) -> object:
    """Enroll a confirmed authenticator app for `user` (what the setup wizard ends with)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.create(user=user, name="default", confirmed=True)


def totp_code(device: object) -> str:
    """The code the person's authenticator app would show right now."""
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"  # type: ignore[attr-defined]
