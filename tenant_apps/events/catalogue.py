"""The events a workspace announces to its webhooks: one name each, and what it means.

A name is the contract receivers code against (`docs/api.md`, "Webhooks"): add names, never
rename or drop one.
"""

from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    PROJECT_CREATED = "project.created", "A project was created"
    PROJECT_UPDATED = "project.updated", "A project's name or description changed"
    TASK_CREATED = "task.created", "A task was added to a project"
    TASK_UPDATED = "task.updated", "A task changed (title, status, assignee or due date)"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Someone's role changed"
    MEMBER_REMOVED = "member.removed", "Someone was removed from the workspace"
    INVITATION_CREATED = "invitation.created", "Someone was invited"
    INVITATION_REVOKED = "invitation.revoked", "An invitation was withdrawn"
    INVITATION_ACCEPTED = "invitation.accepted", "An invitation was accepted"
    EXPORT_READY = "export.ready", "A CSV export is ready to download"
