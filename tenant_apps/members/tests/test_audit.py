"""Who changed whose role, and who removed whom, is on the audit trail, refusals too."""

from __future__ import annotations

import pytest

from shared_apps.accounts.models import User
from shared_apps.audit.models import AuditRecord
from shared_apps.tenants.models import Tenant
from tenancy import public_context
from tenant_apps.members import services
from tenant_apps.members.errors import LastOwnerError
from tests.factories import UserFactory


def _audit(action: str) -> list[tuple[str, str, dict[str, object]]]:
    with public_context():
        return [
            (record.outcome, record.actor, record.detail)
            for record in AuditRecord.objects.filter(action=action).order_by("created_at")
        ]


def test_a_role_change_and_a_removal_are_audited(in_tenant_a: Tenant) -> None:
    owner = User.objects.get(email="owner@alpha.test")
    member = UserFactory.create(email="audited@alpha.test", role=User.Role.MEMBER)

    services.member_role_change(actor=owner, member=member, role=User.Role.ADMIN)
    services.member_remove(actor=owner, member=member)

    [(outcome, actor, detail)] = _audit("member.role_change")
    assert (outcome, actor) == ("succeeded", "user:owner@alpha.test")
    assert (detail["member_id"], detail["role_before"], detail["role"]) == (
        member.pk,
        "member",
        "admin",
    )
    [(outcome, _, detail)] = _audit("member.remove")
    assert (outcome, detail["member_id"], detail["role"]) == ("succeeded", member.pk, "admin")


def test_a_refused_demotion_of_the_last_owner_is_audited_as_failed(in_tenant_a: Tenant) -> None:
    owner = User.objects.get(email="owner@alpha.test")

    with pytest.raises(LastOwnerError):
        services.member_role_change(actor=owner, member=owner, role=User.Role.ADMIN)

    [(outcome, _, detail)] = _audit("member.role_change")
    assert (outcome, detail["error"]) == ("failed", "last_owner")
    owner.refresh_from_db()
    assert owner.role == User.Role.OWNER
